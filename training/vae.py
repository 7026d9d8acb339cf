"""`emojibot train vae`: train the convolutional VAE on every catalog picture.

80% of the pictures train, 20% are held out to report reconstruction loss. The codes of
*all* catalog emojis (posterior means) are written next to the weights, checked finite.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

import numpy as np

from models.artifacts import CHARS_FILE, CODES_FILE, artifacts_dir, update_manifest
from models.artifacts import VAE_DECODER_FILE as DECODER_FILE
from models.artifacts import VAE_ENCODER_FILE as ENCODER_FILE
from models.catalog import EmojiCatalog


def train_vae(
    out_dir: str | os.PathLike | None = None,
    epochs: int = 300,
    batch_size: int = 64,
    seed: int = 7,
    catalog: EmojiCatalog | None = None,
    verbose: int | None = None,
) -> dict[str, Any]:
    import keras

    from models.vae import EmojiVAE, build_decoder, build_encoder

    keras.utils.set_random_seed(seed)
    out = artifacts_dir(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    catalog = catalog or EmojiCatalog.load()
    pictures = catalog.pictures(progress=True)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(pictures))
    n_val = max(1, len(pictures) // 5)
    val, train = pictures[order[:n_val]], pictures[order[n_val:]]

    vae = EmojiVAE(build_encoder(), build_decoder())
    vae.compile(optimizer=keras.optimizers.Adam(1e-3))
    if verbose is None:
        verbose = 1 if sys.stderr.isatty() else 2
    start = time.time()
    # Keep the epoch with the best held-out loss: past it the VAE memorises the 80%.
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=25, restore_best_weights=True)
    hist = vae.fit(
        train,
        epochs=epochs,
        batch_size=batch_size,
        validation_data=(val,),
        verbose=verbose,
        shuffle=True,
        callbacks=[stop],
    )
    seconds = time.time() - start

    z_mean, _ = vae.encoder.predict(pictures, batch_size=256, verbose=0)
    codes = np.asarray(z_mean, dtype=np.float32)
    n_bad = int((~np.isfinite(codes)).any(axis=1).sum())
    if n_bad:
        raise RuntimeError(f"{n_bad} emoji codes are not finite; training diverged")
    vae.encoder.save_weights(out / ENCODER_FILE)
    vae.decoder.save_weights(out / DECODER_FILE)
    np.save(out / CODES_FILE, codes)
    (out / CHARS_FILE).write_text(json.dumps(catalog.chars, ensure_ascii=False), encoding="utf-8")
    best = int(np.argmin(hist.history["val_loss"]))
    info = {
        "epochs": epochs,
        "best_epoch": best + 1,
        "batch_size": batch_size,
        "seed": seed,
        "train_pictures": int(len(train)),
        "val_pictures": int(len(val)),
        "val_reconstruction_loss": float(hist.history["val_reconstruction_loss"][best]),
        "val_kl_loss": float(hist.history["val_kl_loss"][best]),
        "train_reconstruction_loss": float(hist.history["reconstruction_loss"][best]),
        "nonfinite_codes": n_bad,
        "train_seconds": round(seconds, 1),
    }
    update_manifest(out, "vae", info)
    return info
