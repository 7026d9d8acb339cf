"""What the training modules' Keras model, batch and callback classes share: their bases,
imported when a class is defined rather than with the module's imports."""


def py_dataset_base():
    """``keras.utils.PyDataset``, the base of the training batch classes (``TrainingBatches``
    of the SQAM, ``FeedbackBatches`` of a retrain, ``FeatureBatches`` of the WGAN)."""
    import keras

    return keras.utils.PyDataset


def callback_base():
    """``keras.callbacks.Callback``, the base of the training callbacks (the best epoch,
    the sample output, a retrain's progress, the WGAN's hold-out score)."""
    import keras

    return keras.callbacks.Callback


def model_base():
    """``keras.Model``, the base of a model trained with its own ``train_step``
    (``ConditionalWGAN``, the sentence term's ``Student``)."""
    import keras

    return keras.Model
