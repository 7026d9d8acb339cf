"""Pictures → emojis: decoding any uploaded picture, the WGAN-GP networks, and inference.

The image-conditioned WGAN-GP (after EmojiGAN) has three parts:
- an image encoder E (a small CNN over 64×64×3 photos → 256-d features), trained first as
  an emoji classifier (that classifier is also the discriminative baseline);
- a generator G(z | E(picture)) that outputs a point of the target embedding space
  (the SQAM answer space: 128-d unit vectors that exist for every catalog emoji);
- a critic D(e | E(picture)) that scores (embedding, picture) pairs; trained with the
  Wasserstein loss and the gradient penalty λ(‖∇D(x̃)‖ − 1)² on interpolates.
At inference 50 samples of G for a picture each pick their nearest candidate emoji
(cosine); the counts are the picture's emoji distribution, its mode the best answer, and
the VAE decoder draws a novel emoji from the probability-weighted VAE codes of the top
emojis.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.artifacts import (
    CHARS_FILE,
    CLASSIFIER_FILE,
    GENERATOR_FILE,
    PICTURE_META_FILE,
    artifacts_dir,
    read_file,
    read_json,
    read_manifest,
    require,
)
from models.artifacts import PICTURE_ENCODER_FILE as ENCODER_FILE

PICTURE_SIZE = 64
NOISE_DIM = 32
FEATURE_DIM = 256
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
# Width × height allowed, read from the header before any pixel is decompressed. 16 MP
# takes a 12 MP phone photo (4032×3024) and a 5K screenshot (5120×2880); decoded in its
# own mode (4 bytes a pixel at most) it is at most 64 MB, and _decode_bytes bounds what a
# format's decoder adds on top (see MAX_DECODE_BYTES).
MAX_PIXELS = 16_000_000
# What decoding one picture may cost, estimated from its header (pixels × bytes a pixel of
# the decoded mode, plus the decoder's own buffers): the worst pictures just inside it
# peaked at 89–92 MiB of resident memory (tests/test_picture_download.py measures bombs).
MAX_DECODE_BYTES = 90 * 1024 * 1024
_DIRECT_PIXELS = 1_000_000  # up to this, converted whole (as always); above, band by band
_BAND_PIXELS = 1 << 20  # pixels of one band widened to RGB at a time


class PictureError(ValueError):
    """The bytes are not a picture we can read (the message says why)."""


def decode_picture(data: bytes, max_bytes: int = DEFAULT_MAX_BYTES, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Picture file bytes → (64, 64, 3) uint8 RGB (see :func:`_decode`).

    A picture that fails part-way has had its buffers allocated: they are freed, and the
    C heap is trimmed so the process gives the memory back (glibc otherwise keeps it: five
    bad 70 KB PNGs in a row held +650 MB in the running bot)."""
    try:
        return _decode(data, max_bytes, max_pixels)
    except PictureError as exc:
        failure = str(exc)
    # Out here the decoder's exceptions, their frames and buffers are gone; a fresh error
    # carries none of them.
    _trim_heap()
    raise PictureError(failure)


def _trim_heap() -> None:
    global _MALLOC_TRIM
    if _MALLOC_TRIM is None:
        try:
            import ctypes

            _MALLOC_TRIM = ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError):  # not glibc: nothing to trim
            _MALLOC_TRIM = False
    if _MALLOC_TRIM:
        _MALLOC_TRIM(0)


_MALLOC_TRIM = None
# A PNG's text chunks are of no use here: Pillow would inflate up to 64 MB of them on open.
PNG_TEXT_BYTES = 256 * 1024


def _decode(data: bytes, max_bytes: int, max_pixels: int) -> np.ndarray:
    """Picture file bytes → (64, 64, 3) uint8 RGB.

    JPEG, PNG, WebP, GIF (first frame), BMP, TIFF; greyscale, palette, CMYK, 16-bit, float
    and alpha or a transparent colour key (composited on white) all come out as RGB. The
    shorter side is scaled to 64 and the centre cropped. Anything else raises PictureError
    with a reason, whatever a decoder raised on a damaged file.

    Memory is bounded before any pixel is decompressed: the header's width × height
    (``max_pixels``) and the decoder's estimated cost (``MAX_DECODE_BYTES``). A large
    picture is decoded once in its own mode (JPEGs at a reduced scale), then its centre
    square is widened to RGB band by band and box-reduced, so no full-size RGB, float or
    alpha copy is ever made.
    """
    from PIL import Image, ImageOps, PngImagePlugin, UnidentifiedImageError

    PngImagePlugin.MAX_TEXT_CHUNK = PngImagePlugin.MAX_TEXT_MEMORY = PNG_TEXT_BYTES
    if not data:
        raise PictureError("the file is empty (0 bytes)")
    if len(data) > max_bytes:
        raise PictureError(f"the file is {len(data) / 2**20:.1f} MiB, over the {max_bytes / 2**20:.1f} MiB limit")
    try:
        img = Image.open(io.BytesIO(data), formats=_FORMATS)  # only decoders whose cost is measured
    except UnidentifiedImageError as exc:
        raise PictureError("not a picture (no known image format: JPEG, PNG, WebP, GIF, BMP, TIFF)") from exc
    except Image.DecompressionBombError as exc:  # Pillow's own header check, at 2× its limit
        raise PictureError(f"the picture is over the limit of {max_pixels:,} pixels ({exc})") from exc
    except Exception as exc:  # a damaged file fails in a decoder's own way (a TIFF tag: TypeError)
        raise PictureError(f"the picture is damaged ({type(exc).__name__}: {exc})") from exc
    w, h = img.size
    if w < 1 or h < 1:
        raise PictureError("the picture has no pixels")
    if w * h > max_pixels:  # checked from the header: the pixels are never decompressed
        raise PictureError(f"the picture is {w}×{h} pixels, over the limit of {max_pixels:,} pixels")
    try:
        img.seek(0)  # first frame of an animation
        img.draft("RGB", (PICTURE_SIZE * 2, PICTURE_SIZE * 2))  # JPEG: decode at a reduced scale
    except Exception as exc:
        raise PictureError(f"the picture is damaged ({type(exc).__name__}: {exc})") from exc
    cost = _decode_bytes(img, w, h)
    if cost > MAX_DECODE_BYTES:  # still from the header
        raise PictureError(
            f"the picture is {w}×{h} pixels ({img.format} {img.mode}); decoding it would take about "
            f"{cost / 2**20:.0f} MiB, over the limit of {MAX_DECODE_BYTES / 2**20:.0f} MiB"
        )
    failure = None
    try:
        img.load()
        orientation = img.getexif().get(0x0112, 1) if hasattr(img, "getexif") else 1
        rgb = _to_rgb(img) if img.width * img.height <= _DIRECT_PIXELS else _reduced_rgb(img)
    except MemoryError:
        raise
    except Exception as exc:  # any decoder's fault on a damaged file (TypeError, OverflowError: TIFF)
        failure = f"the picture is damaged or truncated ({type(exc).__name__}: {exc})"
    if failure is not None:
        # Raised outside the except block and after closing the picture: the error keeps no
        # traceback of the decoder's frames, whose buffers would otherwise live on in it.
        img.close()
        del img
        raise PictureError(failure)
    upright = {  # EXIF orientation, applied to the small picture (as ImageOps.exif_transpose)
        2: Image.Transpose.FLIP_LEFT_RIGHT,
        3: Image.Transpose.ROTATE_180,
        4: Image.Transpose.FLIP_TOP_BOTTOM,
        5: Image.Transpose.TRANSPOSE,
        6: Image.Transpose.ROTATE_270,
        7: Image.Transpose.TRANSVERSE,
        8: Image.Transpose.ROTATE_90,
    }.get(orientation)
    if upright is not None:
        rgb = rgb.transpose(upright)
    return np.asarray(ImageOps.fit(rgb, (PICTURE_SIZE, PICTURE_SIZE), Image.BILINEAR), dtype=np.uint8)


_GREY_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")
_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")  # "JPEG" opens camera MPO files too


def _decode_bytes(img, w: int, h: int) -> int:
    """Estimated peak bytes of decoding ``img`` (after ``draft``), from its header: the
    decoded image in its own mode and the metadata already read (a PNG's compressed text
    chunks inflate to 64 MB in Pillow), plus the larger of what the format's decoder holds
    while it decodes (measured: a progressive JPEG keeps every DCT coefficient of the
    full-size picture, 2 bytes a sample; libwebp's buffers; a TIFF strip, which can be the
    whole picture) and what widening one band to RGB takes afterwards (16 bytes a pixel)."""
    bands = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16B": 2, "I;16L": 2, "I;16N": 2}
    pixels = img.width * img.height
    native = pixels * bands.get(img.mode, 4)
    held = native + sum(len(v) for v in img.info.values() if isinstance(v, (str, bytes)))
    decoder = 0
    if img.format in ("JPEG", "MPO") and img.info.get("progressive"):
        layers = getattr(img, "layer", None) or [("", 1, 1, 0)] * len(img.getbands())
        hmax = max(lay[1] for lay in layers) or 1
        vmax = max(lay[2] for lay in layers) or 1
        decoder = int(2 * w * h * sum(lay[1] * lay[2] for lay in layers) / (hmax * vmax))
    elif img.format == "WEBP":  # libwebp's canvases and the copy handed to Pillow: 16 bytes a pixel in all
        decoder = 12 * w * h
    elif img.format == "TIFF":  # libtiff decodes a strip at a time, and one strip can be the whole picture
        decoder = native
    return held + max(decoder, 16 * min(pixels, _BAND_PIXELS))


def _reduced_rgb(img):
    """The centre square of a large decoded picture as RGB, box-reduced by an integer
    factor to a side of at least 2 × 64: one band of rows at a time is widened to RGB,
    so the only full-size image is the decoded one, in its own (narrowest) mode."""
    from PIL import Image

    w, h = img.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    factor = max(1, side // (2 * PICTURE_SIZE))
    out = Image.new("RGB", (-(-side // factor), -(-side // factor)))
    grey_range = _extrema(img) if img.mode in _GREY_MODES + ("F",) else None
    rows = factor * max(1, _BAND_PIXELS // (side * factor))
    for y in range(0, side, rows):
        band = img.crop((left, top + y, left + side, top + min(side, y + rows)))
        out.paste(_to_rgb(band, grey_range).reduce(factor), (0, y // factor))
    return out


def _extrema(img) -> tuple[float, float]:
    """(min, max) of a one-band picture; in bands of rows with NumPy where Pillow's
    getextrema does not take the layout (I;16B, I;16L)."""
    try:
        lo, hi = img.getextrema()
        return float(lo), float(hi)
    except ValueError:
        pass
    lo, hi = float("inf"), float("-inf")
    rows = max(1, _BAND_PIXELS // img.width)
    for y in range(0, img.height, rows):
        a = np.asarray(img.crop((0, y, img.width, min(img.height, y + rows))))
        lo, hi = min(lo, float(a.min())), max(hi, float(a.max()))
    return lo, hi


def _to_rgb(img, grey_range: tuple[float, float] | None = None):
    """One picture (or one band of it) → 8-bit RGB. 16/32-bit and float greyscale are
    scaled by ``grey_range`` (the whole picture's extrema; this image's own when None)."""
    from PIL import Image

    if img.mode in _GREY_MODES:  # 16/32-bit greyscale → 8-bit, 0 stays 0, the maximum is 255
        hi = (grey_range or _extrema(img))[1] or 1.0
        arr = np.asarray(img).astype(np.float32) * np.float32(255.0 / hi)
        img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "L")
    elif img.mode == "F":  # float greyscale → 8-bit, minimum to maximum
        lo, hi = grey_range or _extrema(img)
        arr = (np.asarray(img, dtype=np.float32) - np.float32(lo)) * np.float32(255.0 / ((hi - lo) or 1.0))
        img = Image.fromarray(np.clip(np.nan_to_num(arr), 0, 255).astype(np.uint8), "L")
    if img.mode in ("P", "L", "RGB") and "transparency" in img.info:  # a palette entry or a colour key
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA"):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, rgba)
    return img.convert("RGB")


# -- networks ------------------------------------------------------------------------------
def build_image_encoder(widths: Sequence[int] = (32, 64, 128, 256)):
    """64×64×3 uint8-range pictures → FEATURE_DIM features: strided 3×3 convolutions with
    batch norm, global average pooling. Small on purpose: it trains on 2 CPU cores."""
    import keras
    from keras import layers

    inp = keras.Input((PICTURE_SIZE, PICTURE_SIZE, 3), name="picture")
    x = layers.Rescaling(1 / 127.5, -1.0)(inp)
    for i, f in enumerate(widths):
        x = layers.Conv2D(f, 3, strides=2, padding="same", use_bias=False, name=f"conv{i}")(x)
        x = layers.BatchNormalization(name=f"bn{i}")(x)
        x = layers.ReLU()(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(FEATURE_DIM, activation="relu", name="features")(x)
    return keras.Model(inp, x, name="image_encoder")


def build_generator(emb_dim: int, hidden: int = 512):
    """G(z | features) → a unit vector of the target space."""
    import keras
    from keras import layers

    z = keras.Input((NOISE_DIM,), name="noise")
    f = keras.Input((FEATURE_DIM,), name="features")
    x = layers.Concatenate()([z, f])
    x = layers.Dense(hidden)(x)
    x = layers.LeakyReLU(0.2)(x)
    x = layers.Dense(hidden)(x)
    x = layers.LeakyReLU(0.2)(x)
    x = layers.Dense(emb_dim)(x)
    x = layers.UnitNormalization()(x)
    return keras.Model([z, f], x, name="generator")


def build_critic(emb_dim: int, hidden: int = 512):
    """D(embedding | features) → an unbounded score (no batch norm: the gradient penalty
    is per example)."""
    import keras
    from keras import layers

    e = keras.Input((emb_dim,), name="embedding")
    f = keras.Input((FEATURE_DIM,), name="features")
    x = layers.Concatenate()([e, f])
    x = layers.Dense(hidden)(x)
    x = layers.LeakyReLU(0.2)(x)
    x = layers.Dense(hidden)(x)
    x = layers.LeakyReLU(0.2)(x)
    x = layers.Dense(1)(x)
    return keras.Model([e, f], x, name="critic")


# -- inference -----------------------------------------------------------------------------
@dataclass
class PictureAnswer:
    """What a picture gets: the top emojis with probabilities, the mode, and the samples."""

    top: list[tuple[str, float]]
    mode: str
    distinct: int  # how many different emojis the samples picked
    probabilities: np.ndarray  # over the candidates, sums to 1
    candidates: list[str]


def _read_classifier(path: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    with np.load(path) as z:
        return z["w"], z["b"], [str(c) for c in z["emojis"]]


class PictureModel:
    """The shipped picture models: encoder, generator, classifier head, and the target space."""

    def __init__(self, folder: str | os.PathLike | None = None, samples: int = 50, seed: int = 0):
        import keras
        import tensorflow as tf

        self.folder = Path(artifacts_dir(folder))
        require(
            self.folder,
            ENCODER_FILE,
            GENERATOR_FILE,
            PICTURE_META_FILE,
            CHARS_FILE,
            build="`emojibot train wgan --data-dir DATA`",
        )
        self.meta = read_json(self.folder / PICTURE_META_FILE)
        self.version = str(read_manifest(self.folder).get("version", "unversioned"))
        from models.catalog import EmojiIndex

        self.index = read_file(self.folder / CHARS_FILE, EmojiIndex.load)
        self.chars = self.index.chars
        self.targets = read_file(self.folder / self.meta["target_file"], np.load).astype(np.float32)
        self.targets /= np.maximum(np.linalg.norm(self.targets, axis=1, keepdims=True), 1e-8)
        self.samples = samples
        self.encoder = build_image_encoder()
        read_file(self.folder / ENCODER_FILE, self.encoder.load_weights)
        self.generator = build_generator(self.targets.shape[1])
        read_file(self.folder / GENERATOR_FILE, self.generator.load_weights)
        self.classifier = read_file(self.folder / CLASSIFIER_FILE, _read_classifier)
        self._rng = np.random.default_rng(seed)
        keras.utils.set_random_seed(seed)
        pic = tf.TensorSpec((None, PICTURE_SIZE, PICTURE_SIZE, 3), tf.float32)
        self._encode = tf.function(lambda x: self.encoder(x, training=False), input_signature=[pic])
        noise = tf.TensorSpec((None, NOISE_DIM), tf.float32)
        feats = tf.TensorSpec((None, FEATURE_DIM), tf.float32)
        self._generate = tf.function(
            lambda z, f: self.generator([z, f], training=False), input_signature=[noise, feats]
        )

    @property
    def catalog(self):
        return self.index.catalog

    def candidate_rows(self, candidates: Sequence[str] | None) -> tuple[np.ndarray, list[str]]:
        return self.index.names(candidates)

    def features(self, pictures: np.ndarray) -> np.ndarray:
        return np.asarray(self._encode(np.asarray(pictures, np.float32)))

    def sample(self, feats: np.ndarray, n: int | None = None) -> np.ndarray:
        """(B, n, D) generated embeddings: n samples per picture, all in one batch."""
        n = n or self.samples
        b = feats.shape[0]
        z = self._rng.standard_normal((b * n, NOISE_DIM)).astype(np.float32)
        f = np.repeat(feats, n, axis=0)
        return np.asarray(self._generate(z, f)).reshape(b, n, -1)

    def distributions(self, pictures: np.ndarray, candidates: Sequence[str] | None = None):
        """(B, C) emoji distributions (fraction of samples nearest each candidate), and the
        candidates' emojis. Ties between equally frequent emojis go to the closer one."""
        rows, names = self.candidate_rows(candidates)
        emb = self.sample(self.features(pictures))  # (B, n, D)
        cos = emb @ self.targets[rows].T  # (B, n, C)
        pick = cos.argmax(axis=2)
        counts = np.zeros((len(pictures), len(rows)), np.float32)
        for i in range(len(pictures)):
            np.add.at(counts[i], pick[i], 1.0)
        probs = counts / counts.sum(axis=1, keepdims=True)
        tie_break = cos.mean(axis=1) * 1e-6  # below 1/n: only orders emojis with equal counts
        return probs, probs + tie_break, names

    def answer(self, pictures: np.ndarray, k: int = 5, candidates: Sequence[str] | None = None) -> list[PictureAnswer]:
        probs, order_key, names = self.distributions(pictures, candidates)
        out = []
        for p, key in zip(probs, order_key, strict=True):
            kk = max(1, min(k, len(names)))
            idx = np.argsort(-key)[:kk]
            top = [(names[i], float(p[i])) for i in idx if p[i] > 0] or [(names[idx[0]], float(p[idx[0]]))]
            out.append(PictureAnswer(top, names[int(np.argmax(key))], int((p > 0).sum()), p, names))
        return out

    def classify(self, pictures: np.ndarray, candidates: Sequence[str] | None = None) -> tuple[np.ndarray, list[str]]:
        """Softmax of the discriminative baseline over its emojis (restricted to candidates)."""
        w, b, emojis = self.classifier
        logits = self.features(pictures) @ w + b
        names = emojis
        if candidates is not None:
            _, wanted = self.candidate_rows(candidates)
            keep = [i for i, e in enumerate(emojis) if e in set(wanted)]
            logits, names = logits[:, keep], [emojis[i] for i in keep]
        logits = logits - logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True), names

    def novel_emoji(self, answer: PictureAnswer, decoder, top: int = 3) -> np.ndarray:
        """A new 36×36×4 emoji: the VAE decoder on the probability-weighted codes of the
        picture's top emojis."""
        chosen = answer.top[:top]
        weights = np.asarray([p for _, p in chosen], np.float32)
        weights = weights / weights.sum() if weights.sum() > 0 else np.full(len(chosen), 1 / len(chosen))
        code = sum(w * decoder.code_of(e) for (e, _), w in zip(chosen, weights, strict=True))
        return decoder.decode(np.asarray(code, np.float32)[None])[0]
