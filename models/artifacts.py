"""Where the shipped, versioned model artifacts live and how their manifest is read and written.

All artifacts sit in one folder (``models/artifacts`` inside the package by default, or the
folder named by ``EMOJIBOT_ARTIFACTS``). ``manifest.json`` records the artifact version, each
model's training settings and the metrics measured when it was trained.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
from pathlib import Path
from typing import Any

DEFAULT_DIR = Path(__file__).resolve().parent / "artifacts"
MANIFEST = "manifest.json"


# Every file of an artifact folder, named once.
CHARS_FILE = "emoji_chars.json"  # the catalog's emojis in row order (models.catalog.EmojiIndex)
CODES_FILE = "emoji_codes.npy"  # VAE codes of the catalog
VAE_ENCODER_FILE = "vae_encoder.weights.h5"
VAE_DECODER_FILE = "vae_decoder.weights.h5"
QUESTION_FILE = "sqam_question.npz"  # the SQAM question tower, NumPy layout
ANSWERS_FILE = "sqam_answers.npy"  # the SQAM answer vectors of the catalog
BIAS_FILE = "sqam_bias.npy"  # the SQAM per-emoji bias
VOCAB_FILE = "vocab.txt"
HEADS_FILE = "text_heads.npz"
PICTURE_ENCODER_FILE = "picture_encoder.weights.h5"
GENERATOR_FILE = "wgan_generator.weights.h5"
CLASSIFIER_FILE = "picture_classifier.npz"
PICTURE_META_FILE = "picture_model.json"
TARGETS_FILE = "picture_targets.npy"


class ArtifactError(RuntimeError):
    """The artifact folder is missing, incomplete or from an incompatible version."""


def artifacts_dir(path: str | os.PathLike | None = None) -> Path:
    if path is not None:
        return Path(path)
    env = os.environ.get("EMOJIBOT_ARTIFACTS")
    return Path(env) if env else DEFAULT_DIR


def read_manifest(folder: str | os.PathLike | None = None) -> dict[str, Any]:
    path = artifacts_dir(folder) / MANIFEST
    if not path.exists():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


def update_manifest(folder: str | os.PathLike | None, section: str, info: dict[str, Any]) -> dict[str, Any]:
    """Record one model's section and bump the folder's version to a content hash + date."""
    folder = artifacts_dir(folder)
    folder.mkdir(parents=True, exist_ok=True)
    manifest = read_manifest(folder)
    manifest[section] = info
    digest = hashlib.sha256()
    for f in sorted(folder.iterdir()):
        if f.is_file() and f.name != MANIFEST:
            digest.update(f.name.encode())
            digest.update(f.read_bytes())
    manifest["version"] = f"{_dt.date.today():%Y%m%d}-{digest.hexdigest()[:8]}"
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return manifest


def require(folder: Path, *names: str, build: str = "`emojibot train vae` and `emojibot train sqam`") -> None:
    missing = [n for n in names if not (folder / n).exists()]
    if missing:
        raise ArtifactError(f"artifact folder {folder} lacks {', '.join(missing)}; build them with {build}")
