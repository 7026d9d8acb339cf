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
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.artifacts import artifacts_dir, read_manifest, require

PICTURE_SIZE = 64
NOISE_DIM = 32
FEATURE_DIM = 256
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 40_000_000  # width × height before decoding; a 30,000² PNG is refused unread

ENCODER_FILE = "picture_encoder.weights.h5"
GENERATOR_FILE = "wgan_generator.weights.h5"
CLASSIFIER_FILE = "picture_classifier.npz"
PICTURE_META_FILE = "picture_model.json"


class PictureError(ValueError):
    """The bytes are not a picture we can read (the message says why)."""


def decode_picture(data: bytes, max_bytes: int = DEFAULT_MAX_BYTES, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Picture file bytes → (64, 64, 3) uint8 RGB.

    JPEG, PNG, WebP, GIF (first frame), BMP, TIFF; greyscale, palette, CMYK, 16-bit and
    alpha (composited on white) all come out as RGB. The shorter side is scaled to 64 and
    the centre cropped. Anything else raises PictureError with a reason.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    if not data:
        raise PictureError("the file is empty (0 bytes)")
    if len(data) > max_bytes:
        raise PictureError(f"the file is {len(data) / 1e6:.1f} MB, over the {max_bytes / 1e6:.1f} MB limit")
    try:
        img = Image.open(io.BytesIO(data))
    except UnidentifiedImageError as exc:
        raise PictureError("not a picture (no known image format: JPEG, PNG, WebP, GIF, BMP, TIFF)") from exc
    except Image.DecompressionBombError as exc:  # Pillow's own header check, at 2× its limit
        raise PictureError(f"the picture is over the limit of {max_pixels:,} pixels ({exc})") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise PictureError(f"the picture is damaged ({exc})") from exc
    w, h = img.size
    if w < 1 or h < 1:
        raise PictureError("the picture has no pixels")
    if w * h > max_pixels:  # checked from the header: the pixels are never decompressed
        raise PictureError(f"the picture is {w}×{h} pixels, over the limit of {max_pixels:,} pixels")
    try:
        img.seek(0)  # first frame of an animation
        img.draft("RGB", (PICTURE_SIZE * 2, PICTURE_SIZE * 2))  # JPEG: decode at a reduced scale
        img = ImageOps.exif_transpose(img) if hasattr(img, "getexif") else img
        img.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise PictureError(f"the picture is damaged or truncated ({exc})") from exc
    img = _to_rgb(img)
    return np.asarray(ImageOps.fit(img, (PICTURE_SIZE, PICTURE_SIZE), Image.BILINEAR), dtype=np.uint8)


def _to_rgb(img):
    from PIL import Image

    if img.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16/32-bit greyscale → 8-bit
        arr = np.asarray(img, dtype=np.float64)
        hi = arr.max() or 1.0
        img = Image.fromarray((arr / hi * 255.0).astype(np.uint8), "L")
    elif img.mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        arr = (arr - arr.min()) / ((arr.max() - arr.min()) or 1.0)
        img = Image.fromarray((arr * 255.0).astype(np.uint8), "L")
    if img.mode == "P" and "transparency" in img.info:
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
            "emoji_chars.json",
            build="`emojibot train wgan --data-dir DATA`",
        )
        self.meta = json.loads((self.folder / PICTURE_META_FILE).read_text(encoding="utf-8"))
        self.version = str(read_manifest(self.folder).get("version", "unversioned"))
        self.chars: list[str] = json.loads((self.folder / "emoji_chars.json").read_text(encoding="utf-8"))
        self._positions = {c: i for i, c in enumerate(self.chars)}
        self.targets = np.load(self.folder / self.meta["target_file"]).astype(np.float32)
        self.targets /= np.maximum(np.linalg.norm(self.targets, axis=1, keepdims=True), 1e-8)
        self.samples = samples
        self.encoder = build_image_encoder()
        self.encoder.load_weights(self.folder / ENCODER_FILE)
        self.generator = build_generator(self.targets.shape[1])
        self.generator.load_weights(self.folder / GENERATOR_FILE)
        with np.load(self.folder / CLASSIFIER_FILE) as z:
            self.classifier = (z["w"], z["b"], [str(c) for c in z["emojis"]])
        self._rng = np.random.default_rng(seed)
        keras.utils.set_random_seed(seed)
        pic = tf.TensorSpec((None, PICTURE_SIZE, PICTURE_SIZE, 3), tf.float32)
        self._encode = tf.function(lambda x: self.encoder(x, training=False), input_signature=[pic])
        noise = tf.TensorSpec((None, NOISE_DIM), tf.float32)
        feats = tf.TensorSpec((None, FEATURE_DIM), tf.float32)
        self._generate = tf.function(
            lambda z, f: self.generator([z, f], training=False), input_signature=[noise, feats]
        )
        self._catalog = None

    @property
    def catalog(self):
        if self._catalog is None:
            from models.catalog import EmojiCatalog

            self._catalog = EmojiCatalog.load()
        return self._catalog

    def candidate_rows(self, candidates: Sequence[str] | None) -> tuple[np.ndarray, list[str]]:
        if candidates is None:
            return np.arange(len(self.chars)), list(self.chars)
        rows: dict[int, None] = {}
        for q in candidates:
            char = q if q in self._positions else self.catalog.lookup(q).char
            if char not in self._positions:
                from models.catalog import UnknownEmojiError

                raise UnknownEmojiError(q)
            rows.setdefault(self._positions[char], None)
        if not rows:
            raise ValueError("the candidate list is empty")
        idx = np.fromiter(rows, dtype=np.int64)
        return idx, [self.chars[i] for i in idx]

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
