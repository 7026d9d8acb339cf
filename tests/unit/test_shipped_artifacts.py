"""The artifacts that ship: small, versioned, consistent, finite, and ranking sensibly."""

import json

import numpy as np
import pytest

from models.artifacts import DEFAULT_DIR, read_manifest


def test_artifacts_are_small_and_versioned():
    files = [f for f in DEFAULT_DIR.rglob("*") if f.is_file()]
    total = sum(f.stat().st_size for f in files)
    assert total <= 40 * 1024 * 1024, f"{total / 1e6:.1f} MB"
    manifest = read_manifest()
    assert manifest["version"]
    assert {"vae", "sqam"} <= set(manifest)


def test_every_catalog_emoji_has_a_finite_code(catalog):
    codes = np.load(DEFAULT_DIR / "emoji_codes.npy")
    chars = json.loads((DEFAULT_DIR / "emoji_chars.json").read_text(encoding="utf-8"))
    assert chars == catalog.chars
    assert codes.shape == (len(catalog), 16)
    assert np.isfinite(codes).all()  # the blog had 4.15% inf codes
    assert read_manifest()["vae"]["nonfinite_codes"] == 0


def test_shipped_codes_come_from_the_shipped_encoder(catalog):
    from models.vae import build_encoder

    enc = build_encoder()
    enc.load_weights(DEFAULT_DIR / "vae_encoder.weights.h5")
    idx = np.arange(0, len(catalog), 37)
    z_mean, _ = enc.predict(catalog.pictures()[idx], verbose=0)
    np.testing.assert_allclose(z_mean, np.load(DEFAULT_DIR / "emoji_codes.npy")[idx], atol=1e-3)


def test_answer_vectors_cover_the_catalog(ranker, catalog):
    assert ranker.answers.shape[0] == len(catalog)
    np.testing.assert_allclose(np.linalg.norm(ranker.answers, axis=1), 1.0, atol=1e-4)
    assert np.isfinite(ranker.bias).all() and ranker.bias.shape == (len(catalog),)


@pytest.mark.parametrize(
    "text, candidates, expected",
    [
        ("Merry Christmas everyone! #christmas", "tweeteval", "🎄"),
        ("Happy 4th of July! #usa #america", "tweeteval", "🇺🇸"),
        ("photo shoot today #photography", "tweeteval", {"📷", "📸"}),
        ("@united worst airline ever, lost my bag and no one helps", "airline", "😡"),
        ("@united thank you so much, the crew was amazing!", "airline", "🎉"),
    ],
)
def test_obvious_texts_rank_the_obvious_emoji_first_among_candidates(ranker, text, candidates, expected):
    from training.data import AIRLINE_EMOJIS, TWEETEVAL_EMOJIS

    cands = list(TWEETEVAL_EMOJIS) if candidates == "tweeteval" else list(AIRLINE_EMOJIS.values())
    top = ranker.rank([text], k=1, candidates=cands)[0][0].emoji
    assert top in (expected if isinstance(expected, set) else {expected}), top


@pytest.mark.parametrize(
    "text, any_of",
    [
        ("happy birthday to you, have a great party", {"🎂", "🎉", "🎈", "🎁", "🥳", "🎊", "🍰", "🧁"}),
        ("merry christmas and happy holidays", {"🎄", "🎅", "🤶", "🎁", "⛄", "☃️", "❄️", "🌟", "⭐"}),
        ("I love you so much", {"❤️", "😍", "😘", "💕", "💖", "💗", "💓", "💞", "🥰", "💘", "💝", "♥️", "😻"}),
        ("the pizza here is delicious", {"🍕", "😋", "🤤", "🍝", "🍔", "🍴", "🍽️"}),
    ],
)
def test_obvious_texts_find_fitting_emojis_in_the_whole_catalog(ranker, text, any_of):
    top = [r.emoji for r in ranker.rank([text], k=10)[0]]
    assert set(top) & any_of, top


def test_the_shipped_files_are_the_ones_their_version_names():
    """The shipped folder's name (its manifest's version) is the digest of its files: a
    file committed without the training command that writes the manifest would not be."""
    from models.artifacts import DEFAULT_DIR, read_manifest, verify

    assert verify(DEFAULT_DIR) == read_manifest(DEFAULT_DIR)["version"]
