"""Where the versioned model artifacts live: their file names, manifest and registry.

A version is one folder: the shipped one is ``models/artifacts`` inside the package
(read-only; ``EMOJIBOT_ARTIFACTS`` names another), and :class:`Registry` keeps the versions
``emojibot retrain`` makes under a data directory, each in ``versions/<version>``, written
whole into a staging folder and renamed into place (a reader never sees half a version).
``manifest.json`` records the version, each model's training settings and the metrics
measured when it was trained; ``status.json`` beside it the registry's verdict (candidate,
promoted, rejected, with the gate's figures). Which version the bot answers with is not a
file: it is the ``current`` pointer in the bot's store, so that every worker agrees on it.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import shutil
import tempfile
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

DEFAULT_DIR = Path(__file__).resolve().parent / "artifacts"
MANIFEST = "manifest.json"
STATUS_FILE = "status.json"  # the registry's verdict on a version (not part of its content hash)


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
NAMES_FILE = "name_match.npz"  # emoji names in the message (models.names)
MEANINGS_FILE = "name_meaning.npz"  # words near an emoji's names in meaning (models.names)
CATALOG_HEAD_FILE = "catalog_head.npz"  # the n-gram model of whole-catalog ranking (models.catalog_head)
SENTENCE_FILE = "sentence_term.npz"  # the distilled sentence encoder of whole-catalog ranking (models.sentence)
PRIOR_FILE = "catalog_prior.npz"  # the popularity mix of whole-catalog ranking (models.prior)
NAME_SLOT_FILE = "name_slot.json"  # the match from which a named emoji gets the fifth place (models.names)
COMPLAINT_FILE = "complaint_model.npz"  # the learned half of what reads as a complaint (models.complaint)
PICTURE_ENCODER_FILE = "picture_encoder.weights.h5"
GENERATOR_FILE = "wgan_generator.weights.h5"
CLASSIFIER_FILE = "picture_classifier.npz"
PICTURE_META_FILE = "picture_model.json"
TARGETS_FILE = "picture_targets.npy"


STAGING_PREFIX = ".staging-"  # a retrain's folder under the registry's root until it is committed

# The command that writes each file (what an operator reruns to rebuild a damaged one).
WRITTEN_BY = {
    **dict.fromkeys((CHARS_FILE, CODES_FILE, VAE_ENCODER_FILE, VAE_DECODER_FILE), "emojibot train vae"),
    **dict.fromkeys((QUESTION_FILE, ANSWERS_FILE, BIAS_FILE, VOCAB_FILE), "emojibot train sqam"),
    HEADS_FILE: "emojibot train heads",
    **dict.fromkeys((NAMES_FILE, MEANINGS_FILE), "emojibot train names"),
    SENTENCE_FILE: "emojibot train sentence",
    COMPLAINT_FILE: "emojibot train complaint",
    **dict.fromkeys((CATALOG_HEAD_FILE, PRIOR_FILE, NAME_SLOT_FILE), "emojibot train catalog-head"),
    **dict.fromkeys(
        (PICTURE_ENCODER_FILE, GENERATOR_FILE, CLASSIFIER_FILE, PICTURE_META_FILE, TARGETS_FILE), "emojibot train wgan"
    ),
}


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
    return read_json(path)


def update_manifest(folder: str | os.PathLike | None, section: str, info: dict[str, Any]) -> dict[str, Any]:
    """Record one model's section and bump the folder's version to a content hash + date."""
    folder = artifacts_dir(folder)
    folder.mkdir(parents=True, exist_ok=True)
    manifest = read_manifest(folder)
    manifest[section] = info
    manifest["version"] = f"{_dt.date.today():%Y%m%d}-{content_digest(folder)}"
    write_json_atomically(folder / MANIFEST, manifest)  # a rename: never writes through a hard link
    return manifest


def content_digest(folder: Path) -> str:
    """What a version's name ends with: the first 8 hex digits of the SHA-256 of the
    folder's files, names and bytes in name order (the manifest and the registry's verdict
    left out)."""
    digest = hashlib.sha256()
    for f in sorted(Path(folder).iterdir()):
        if f.is_file() and f.name not in (MANIFEST, STATUS_FILE):
            digest.update(f.name.encode())
            with f.open("rb") as fh:
                while chunk := fh.read(1 << 20):
                    digest.update(chunk)
    return digest.hexdigest()[:8]


def verify(folder: str | os.PathLike) -> str:
    """The folder's version, if its files are the ones that version was written with; else
    an ArtifactError that says so. A file changed, replaced or not fully copied (a version
    folder synced to another host while a worker reads it) parses and ranks, wrongly;
    this is what catches it: about 40 ms for the 37 MB of a version."""
    folder = Path(folder)
    version = str(read_manifest(folder).get("version", ""))
    if not version:
        raise ArtifactError(f"{folder} has no {MANIFEST} with a version: not a model version's folder")
    found = content_digest(folder)
    if version.rsplit("-", 1)[-1] != found:
        raise ArtifactError(
            f"{folder}: its files are not the ones of version {version} (their digest is {found}): a file was "
            "changed, replaced or not fully copied; copy the version's folder again, or rebuild it"
        )
    return version


# What a file that is truncated, corrupt or of another format raises while it is read:
# NumPy and the zip reader (ValueError, BadZipFile, zlib.error, EOFError), JSON and text
# (ValueError), h5py and the file system (OSError), a missing array or key (KeyError).
_UNREADABLE = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error)


def read_file(path: Path, read: Callable[[Path], T]) -> T:
    """``read(path)``, a failure to read the file raised as an :class:`ArtifactError` that
    names it and says what to do: an operator learns which file of which folder to restore
    or rebuild, not a NumPy message (a bot then starts without the picture model, or keeps
    the version it has, as for a missing file)."""
    try:
        return read(path)
    except _UNREADABLE as exc:
        # the reader's first sentence only (NumPy goes on to suggest loading pickles unsafely)
        why = str(exc).split(". ")[0].strip() or type(exc).__name__
        if isinstance(exc, OSError) and exc.errno is not None:  # permissions, a folder in its place, …
            raise ArtifactError(f"{path} cannot be read ({why}): make it a file this user can read") from exc
        command = WRITTEN_BY.get(path.name)
        rebuild = f"rebuild it with `{command}`" if command else "rebuild the folder"
        raise ArtifactError(
            f"{path} cannot be read ({why}): the file is truncated, corrupt or of another format; restore it "
            f"(`git checkout -- models/artifacts` for the shipped folder) or {rebuild}"
        ) from exc


def read_json(path: Path) -> Any:
    """A JSON artifact file, as :func:`read_file` reads one."""
    return read_file(path, lambda p: json.loads(p.read_text(encoding="utf-8")))


def own_files(folder: Path) -> int:
    """Give each file of ``folder`` that shares its bytes with another path a copy of its
    own (through a rename), so that a writer that writes it in place (``np.save`` on an
    existing path) cannot change that other path: a registry's version hard-links the
    files it did not change (:meth:`Registry.stage`), and `emojibot train …` into the
    shipped folder changed them under every retrained version, whose digest then no longer
    matched its name. Returns how many files were copied."""
    copied = 0
    for f in sorted(folder.iterdir()) if folder.is_dir() else []:
        if f.is_file() and not f.is_symlink() and f.stat().st_nlink > 1:
            tmp = f.with_name(f".{f.name}.{os.getpid()}.own")
            shutil.copy2(f, tmp)
            os.replace(tmp, f)
            copied += 1
    return copied


def read_cache(path: Path) -> Any | None:
    """A JSON cache file (a measurement kept to be read again), or None where it is missing
    or cannot be read: a cache cut short (a kill, a full disk) is measured again, not an
    error that stops every reader for good."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None


def require(folder: Path, *names: str, build: str = "`emojibot train vae` and `emojibot train sqam`") -> None:
    missing = [n for n in names if not (folder / n).exists()]
    if missing:
        raise ArtifactError(f"artifact folder {folder} lacks {', '.join(missing)}; build them with {build}")


def write_json_atomically(path: Path, data: Any) -> None:
    """Write ``path`` through a temporary file and a rename: readers see the old or the new."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


class Registry:
    """Model versions: the shipped folder and those under ``root/versions``.

    ``stage(base)`` gives a staging folder holding a copy of ``base`` (files hard-linked
    where the file system allows, so a version costs only what changed); ``commit`` renames
    it to ``versions/<its manifest version>``. ``status`` / ``set_status`` read and write a
    version's verdict. The shipped version is never written: its verdict is ``shipped``.
    """

    def __init__(self, root: str | os.PathLike, shipped: str | os.PathLike | None = None):
        self.root = Path(root)
        self.shipped = artifacts_dir(shipped)

    @property
    def shipped_version(self) -> str:
        return str(read_manifest(self.shipped).get("version", "unversioned"))

    def folder(self, version: str | None) -> Path:
        """The folder of ``version`` (None: the shipped one); ArtifactError if unknown."""
        if version is None or version == self.shipped_version:
            return self.shipped
        if "/" in version or version.startswith("."):
            raise ArtifactError(f"{version!r} is not a model version")
        path = self.root / "versions" / version
        if not (path / MANIFEST).exists():
            raise ArtifactError(f"no model version {version} (see `emojibot model list`)")
        return path

    def versions(self) -> list[dict[str, Any]]:
        """Every version, oldest first: version, folder, status and the status's details."""
        out = [{"version": self.shipped_version, "folder": str(self.shipped), "status": "shipped"}]
        base = self.root / "versions"
        found = []
        for d in base.iterdir() if base.is_dir() else ():
            if (d / MANIFEST).exists():
                found.append((d.stat().st_mtime, d))
        for _, d in sorted(found):
            out.append({"version": d.name, "folder": str(d), **self.status(d.name)})
        return out

    def status(self, version: str) -> dict[str, Any]:
        folder = self.folder(version)
        if folder == self.shipped:
            return {"status": "shipped"}
        path = folder / STATUS_FILE
        return read_json(path) if path.exists() else {"status": "candidate"}

    def set_status(self, version: str, status: str, **details: Any) -> None:
        folder = self.folder(version)
        if folder == self.shipped:
            raise ArtifactError("the shipped version is read-only")
        write_json_atomically(folder / STATUS_FILE, {**self.status(version), "status": status, **details})

    def stage(self, base: Path) -> Path:
        """A new staging folder under the root holding a copy of ``base``'s files."""
        self.root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=self.root))
        for f in base.iterdir():
            if f.is_file() and f.name != STATUS_FILE:
                try:
                    os.link(f, staging / f.name)
                except OSError:  # another file system, or links not allowed
                    shutil.copy2(f, staging / f.name)
        return staging

    def clear_staging(self) -> int:
        """Remove the staging folders a retrain left when it was killed before it could clean
        up (SIGKILL, the OOM killer, a power cut); call it holding the retrain lock, when no
        other retrain can be staging. Returns how many were removed."""
        stale = [d for d in self.root.glob(f"{STAGING_PREFIX}*") if d.is_dir()] if self.root.is_dir() else []
        for d in stale:
            shutil.rmtree(d, ignore_errors=True)
        return len(stale)

    def commit(self, staging: Path) -> str:
        """Move a finished staging folder into ``versions/``; returns its version."""
        version = str(read_manifest(staging)["version"])
        target = self.root / "versions" / version
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            raise ArtifactError(f"version {version} exists already (the same model was trained twice)")
        os.replace(staging, target)
        return version

    def summaries(self, current: str | None = None) -> list[dict[str, Any]]:
        """Every version as `model list` and the playground's admin view show it: status,
        parent, whether it is ``current``, and the figures its gate measured (for the
        shipped version, those a gate measured of it as a base, once one has run)."""
        current = current or self.shipped_version
        rows = []
        for v in self.versions():
            fig = (v.get("figures") or {}).get("candidate") or {}
            if not fig:
                fig = read_cache(self.figures_cache(v["version"])) or {}
            rows.append(
                {
                    "version": v["version"],
                    "status": v["status"],
                    "current": v["version"] == current,
                    "parent": v.get("parent"),
                    "catalog_val_mrr": (fig.get("catalog_val") or {}).get("mrr"),
                    "catalog_val_macro_recall_at_5": (fig.get("catalog_val") or {}).get("macro_recall_at_5"),
                    "tweeteval_val_macro_f1": fig.get("tweeteval_val_macro_f1"),
                    "feedback_mrr": (fig.get("feedback") or {}).get("mrr"),
                    "reasons": v.get("reasons", []),
                }
            )
        return rows

    def figures_cache(self, version: str) -> Path:
        """Where the gate keeps a version's validation figures (read-only versions included)."""
        return self.root / "figures" / f"{version}.json"
