"""What the training modules' Keras batch classes share."""


def py_dataset_base():
    """``keras.utils.PyDataset``, the base of the training batch classes (``TrainingBatches``
    of the SQAM, ``FeedbackBatches`` of a retrain)."""
    import keras

    return keras.utils.PyDataset
