"""Decode VAE codes into emoji pictures and lay them out as PNG sheets.

Novel emojis come from codes the catalog does not have: random draws from a Gaussian fit
to the catalog's codes, or points on 2-D grids spanned by three catalog emojis A, B, C
(``A + u·(B − A) + v·(C − A)``), which show how the latent space blends them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from models.artifacts import CHARS_FILE, CODES_FILE, artifacts_dir, read_file, read_json, require
from models.artifacts import VAE_DECODER_FILE as DECODER_FILE


class EmojiDecoder:
    """The VAE decoder with the catalog's codes, loaded from the artifact folder."""

    def __init__(self, folder: str | os.PathLike | None = None):
        from models.vae import LATENT_DIM, build_decoder

        self.folder = Path(artifacts_dir(folder))
        require(self.folder, DECODER_FILE, CODES_FILE, CHARS_FILE)
        self.model = build_decoder(LATENT_DIM)
        read_file(self.folder / DECODER_FILE, self.model.load_weights)
        self.codes = read_file(self.folder / CODES_FILE, np.load).astype(np.float32)
        self.chars: list[str] = read_json(self.folder / CHARS_FILE)
        self.latent_dim = LATENT_DIM

    def decode(self, codes: np.ndarray) -> np.ndarray:
        codes = np.asarray(codes, np.float32).reshape(-1, self.latent_dim)
        if not np.isfinite(codes).all():
            raise ValueError("codes must be finite numbers")
        return np.asarray(self.model.predict_on_batch(codes), dtype=np.float32)

    def code_of(self, char: str) -> np.ndarray:
        return self.codes[self.chars.index(char)]

    def random_codes(self, n: int, seed: int = 0) -> np.ndarray:
        """Draws from a Gaussian fit (mean, covariance) to the catalog's codes."""
        rng = np.random.default_rng(seed)
        mean = self.codes.mean(axis=0)
        cov = np.cov(self.codes, rowvar=False)
        return rng.multivariate_normal(mean, cov, size=n).astype(np.float32)

    def abc_grid(self, a: str, b: str, c: str, size: int = 6, extent: float = 1.0) -> np.ndarray:
        """(size*size, latent) codes of the plane through the codes of emojis a, b, c."""
        ca, cb, cc = self.code_of(a), self.code_of(b), self.code_of(c)
        steps = np.linspace(0.0, extent, size, dtype=np.float32)
        return np.stack([ca + u * (cb - ca) + v * (cc - ca) for v in steps for u in steps])


def to_image(picture: np.ndarray, scale: int = 4):
    """One 36×36×4 picture in [0, 1] → RGBA PIL image, upscaled for display."""
    from PIL import Image

    arr = (np.clip(picture, 0.0, 1.0) * 255).round().astype(np.uint8)
    im = Image.fromarray(arr, "RGBA")
    return im.resize((arr.shape[1] * scale, arr.shape[0] * scale), Image.LANCZOS) if scale > 1 else im


def sheet(rows: Sequence[np.ndarray], scale: int = 2, pad: int = 4, background=(255, 255, 255, 255)):
    """Rows of pictures → one RGBA image (white background so it reads in any viewer)."""
    from PIL import Image

    cell = 36 * scale + pad
    width = max(len(r) for r in rows) * cell + pad
    out = Image.new("RGBA", (width, len(rows) * cell + pad), background)
    for y, row in enumerate(rows):
        for x, pic in enumerate(row):
            im = to_image(pic, scale)
            out.alpha_composite(im, (pad + x * cell, pad + y * cell))
    return out
