"""`emojibot bench`: the bot under measurement, outside the code that runs in production.

``text``: the text ranker and the async engine, with the TF-IDF + SVM baseline;
``picture``: picture answering through the picture engine; ``slack``: the whole Slack path
(adapter, core, engine, store) under load and faults, on loopback. Model-level timing
helpers live in ``training.bench``.
"""
