"""Picture decoding (formats and hostile input), the WGAN's weights and metrics, and the
shipped picture model answering photos through the async engine."""

import asyncio
import io
import struct
import time
import zlib

import numpy as np
import pytest
from PIL import Image

from models.picture import PictureError, decode_picture


def _encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _red(mode: str = "RGB", size=(80, 60)) -> Image.Image:
    return Image.new("RGB", size, (220, 20, 20)).convert(mode)


@pytest.mark.parametrize(
    "fmt,mode",
    [
        ("JPEG", "RGB"),
        ("JPEG", "L"),
        ("JPEG", "CMYK"),
        ("PNG", "RGB"),
        ("PNG", "P"),
        ("WEBP", "RGB"),
        ("BMP", "RGB"),
        ("TIFF", "RGB"),
        ("GIF", "P"),
    ],
)
def test_formats_and_modes_decode_to_64x64_rgb(fmt, mode):
    out = decode_picture(_encode(_red(mode), fmt))
    assert out.shape == (64, 64, 3) and out.dtype == np.uint8
    if mode != "L":
        assert out[..., 0].mean() > 150 and out[..., 1].mean() < 90  # still red (CMYK converted right)


def test_sixteen_bit_greyscale_is_scaled_not_clipped():
    arr = (np.linspace(0, 65535, 64 * 64).reshape(64, 64)).astype(np.uint16)
    img = Image.fromarray(arr)
    assert img.mode.startswith("I")
    out = decode_picture(_encode(img, "PNG"))
    assert out.min() < 10 and out.max() > 240  # the whole range survives


def test_alpha_is_composited_on_white():
    img = Image.new("RGBA", (64, 64), (0, 0, 0, 0))  # fully transparent black
    out = decode_picture(_encode(img, "PNG"))
    assert out.min() == 255


def test_a_colour_key_is_transparent_too():
    """An RGB or greyscale PNG marks one colour transparent (tRNS) instead of an alpha
    channel: that colour is composited on white as alpha is (it came out black)."""
    for mode, key in (("RGB", (0, 0, 0)), ("L", 0)):
        buf = io.BytesIO()
        Image.new(mode, (64, 64), key).save(buf, "PNG", transparency=key)
        assert decode_picture(buf.getvalue()).min() == 255, mode


def test_a_tiff_whose_tags_are_of_the_wrong_type_is_refused_as_damaged():
    """Pillow's TIFF decoder fails on a StripOffsets tag typed ASCII with a TypeError,
    which no caller expected: the event was retried, downloaded and decoded again and again,
    then marked failed with no answer. Any decoder's fault is a damaged picture now."""
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 200, 30)).save(buf, "TIFF")
    data = bytearray(buf.getvalue())
    assert data[:4] == b"II*\x00"
    ifd = struct.unpack_from("<I", data, 4)[0]
    for i in range(struct.unpack_from("<H", data, ifd)[0]):
        at = ifd + 2 + 12 * i
        if struct.unpack_from("<H", data, at)[0] == 273:  # StripOffsets
            struct.pack_into("<H", data, at + 2, 2)  # its type: ASCII
    with pytest.raises(PictureError, match="damaged"):
        decode_picture(bytes(data))


def test_animated_gif_uses_the_first_frame():
    frames = [Image.new("RGB", (64, 64), c).convert("P") for c in ((255, 0, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    out = decode_picture(buf.getvalue())
    assert out[..., 0].mean() > 200 and out[..., 2].mean() < 50


def test_wide_picture_is_centre_cropped():
    img = Image.new("RGB", (300, 100), (0, 0, 255))
    img.paste((255, 0, 0), (100, 0, 200, 100))  # red centre third
    out = decode_picture(_encode(img, "PNG"))
    assert out[:, 16:48, 0].mean() > 200


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    "data,reason",
    [
        (b"", "empty"),
        (b"hello, this is a text file\n" * 10, "not a picture"),
        (_png_header_only(30_000, 30_000), "over the limit"),
    ],
)
def test_hostile_input_gets_a_clear_error(data, reason):
    with pytest.raises(PictureError, match=reason):
        decode_picture(data)


def test_truncated_jpeg_is_refused():
    full = _encode(Image.effect_noise((256, 256), 60).convert("RGB"), "JPEG", quality=90)
    with pytest.raises(PictureError, match="damaged or truncated"):
        decode_picture(full[: len(full) // 2])


def test_size_cap_is_configurable():
    data = _encode(_red(), "PNG")
    with pytest.raises(PictureError, match="over the"):
        decode_picture(data, max_bytes=len(data) - 1)
    assert decode_picture(data, max_bytes=len(data)).shape == (64, 64, 3)


# -- training pieces ---------------------------------------------------------------------
def test_expsmooth_weights_follow_the_formula_and_favour_rare_emojis():
    from training.wgan import example_weights

    labels = np.array([0] * 80 + [1] * 15 + [2] * 5)
    w = example_weights(labels, 3, "expsmooth", k=5.0)
    freq = np.array([0.8, 0.15, 0.05])
    w_e = np.exp(-5.0 * freq) / np.exp(-5.0 * freq[labels]).sum()  # the paper's normalisation
    expected = w_e[labels] / w_e[labels].mean()
    np.testing.assert_allclose(w, expected, rtol=1e-5)
    assert w[-1] > w[90] > w[0]
    t = example_weights(labels, 3, "tfidf", k=0)
    assert t[-1] > t[90] > t[0] and abs(t.mean() - 1) < 1e-5
    assert (example_weights(labels, 3, "none", k=0) == 1).all()
    with pytest.raises(ValueError):
        example_weights(labels, 3, "bogus", k=0)


def test_picture_metrics_on_a_known_case():
    from training.wgan import picture_metrics

    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.6, 0.3, 0.1], [0.2, 0.2, 0.6]])
    labels = np.array([0, 1, 1, 2])
    classes = np.array([0, 1, 1, 2])
    m = picture_metrics(probs, labels, classes, class_label=np.array([0, 1, 2]))
    assert m["top1_accuracy"] == 0.75 and m["distinct_modes"] == 3
    # TV per class: 1 − mean mass on the class emoji → (0.3 + 0.45 + 0.4) / 3
    assert m["mean_tv_distance"] == pytest.approx((0.3 + 0.45 + 0.4) / 3)


def test_a_time_budget_stops_training_before_the_epoch_that_would_overrun_it():
    """The picture stages keep `train wgan` within its minutes: a budget that one epoch
    already fills stops after that epoch, a roomy one lets every epoch run, and the encoder's
    budget also hands back its best epoch's weights."""
    import keras

    from training.wgan import CosineWithinBudget, KeepBestWithinBudget, WithinBudget

    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)

    def fit(callback):
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
        model.compile(
            keras.optimizers.Adam(0.05),
            keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=[keras.metrics.SparseCategoricalAccuracy(name="acc")],
        )
        model.fit(x, y, validation_data=(x, y), epochs=5, callbacks=[callback], verbose=0)
        return model

    tight, roomy = WithinBudget(minutes=1e-9), WithinBudget(minutes=60)
    fit(tight)
    fit(roomy)
    assert (tight.epochs, roomy.epochs) == (1, 5)
    best = KeepBestWithinBudget(minutes=60)
    model = fit(best)
    assert [h["epoch"] for h in best.history] == [1, 2, 3, 4, 5]
    assert best.best == pytest.approx(max(h["val_acc"] for h in best.history), abs=1e-4)
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), best.weights, strict=True))
    one = KeepBestWithinBudget(minutes=1e-9)
    fit(one)
    assert len(one.history) == 1 and one.epochs == 1

    # The encoder's learning rate: a cosine over the epochs or the budget, whichever ends first.
    steps = 5 * 2  # 64 rows in batches of 32, five epochs
    by_steps = CosineWithinBudget(minutes=60, peak=0.05, alpha=0.1, total_steps=steps)
    model = fit(by_steps)
    assert [h["epoch"] for h in by_steps.history] == [1, 2, 3, 4, 5]
    rates = [h["learning_rate"] for h in by_steps.history]
    assert rates == sorted(rates, reverse=True) and rates[-1] == pytest.approx(0.005)
    last = 0.05 * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * 0.9)))  # set before the tenth batch
    assert float(model.optimizer.learning_rate) == pytest.approx(last, rel=1e-3)
    by_time = CosineWithinBudget(minutes=1.0, peak=0.05, alpha=0.1, total_steps=1000)
    by_time.start = time.time() - 30  # half the budget spent, hardly any steps
    assert by_time.rate() == pytest.approx(0.05 * (0.1 + 0.9 * 0.5), rel=0.02)
    by_time.start = time.time() - 60
    assert by_time.rate() == pytest.approx(0.005)


def test_wgan_steps_hold_n_critic_batches_of_distinct_rows_in_a_new_order_each_epoch():
    from training.wgan import FeatureBatches

    feats = np.arange(1000, dtype=np.float32)[:, None] * np.ones((1, 4), np.float32)
    labels, weights = np.arange(1000) % 7, np.ones(1000, np.float32)
    steps = FeatureBatches(feats, labels, weights, batch_size=64, n_critic=5, seed=3)
    assert len(steps) == 3  # 1,000 // (5 × 64): the last 40 rows wait for the next draw
    first = np.concatenate([steps[i][0][:, 0] for i in range(len(steps))])
    assert len(first) == 960 == len(np.unique(first))
    f, y, w = steps[1]
    assert f.shape == (320, 4) and (y == f[:, 0].astype(int) % 7).all() and w.shape == (320,)
    steps.on_epoch_end()
    again = np.concatenate([steps[i][0][:, 0] for i in range(len(steps))])
    assert not np.array_equal(first, again)
    small = FeatureBatches(feats[:13], labels[:13], weights[:13], batch_size=64, n_critic=5, seed=3)
    assert len(small) == 1 and len(small[0][0]) == 10  # one step of five batches of two
    with pytest.raises(ValueError, match="too few"):
        FeatureBatches(feats[:4], labels[:4], weights[:4], batch_size=64, n_critic=5, seed=3)


def test_the_conditional_wgan_learns_which_target_each_picture_feature_asks_for():
    """Four kinds of picture features, each asking for its own target vector: after a short
    training the generator's samples for a feature land nearest its target far more often
    than chance (a quarter), and every epoch logged its critic and generator losses."""
    from models.picture import FEATURE_DIM, NOISE_DIM
    from training.wgan import WGANSettings, _generate_fn, train_wgan_on_features

    rng = np.random.default_rng(0)
    targets = rng.standard_normal((4, 8)).astype(np.float32)
    targets /= np.linalg.norm(targets, axis=1, keepdims=True)
    labels = rng.integers(0, 4, 1280)
    kinds = rng.standard_normal((4, FEATURE_DIM)).astype(np.float32)
    feats = np.maximum(kinds[labels] + 0.1 * rng.standard_normal((1280, FEATURE_DIM)), 0).astype(np.float32)
    s = WGANSettings(wgan_epochs=6, batch_size=64, seed=5)
    gen, losses = train_wgan_on_features(feats, labels, targets, np.ones(1280, np.float32), s, verbose=False)
    assert all(len(v) == 6 and np.isfinite(v).all() for v in losses.values())
    assert set(losses) == {"wasserstein", "gradient_penalty", "generator_loss"}
    test = rng.integers(0, 4, 200)
    f = np.maximum(kinds[test] + 0.1 * rng.standard_normal((200, FEATURE_DIM)), 0).astype(np.float32)
    out = np.asarray(_generate_fn(gen)(rng.standard_normal((200, NOISE_DIM)).astype(np.float32), f))
    assert np.allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-4)  # unit vectors of the target space
    assert np.mean((out @ targets.T).argmax(axis=1) == test) > 0.9  # one epoch: 0.36


# -- the shipped model -------------------------------------------------------------------
@pytest.fixture(scope="module")
def picture_model():
    from models.picture import PictureModel

    return PictureModel()


@pytest.fixture(scope="module")
def photos(data_dir):
    z = np.load(data_dir / "tinyimagenet_emoji" / "train.npz")
    off, jpeg = z["offsets"], z["jpeg"]
    return [jpeg[off[i] : off[i + 1]].tobytes() for i in (0, 5000, 20000, 40000)]


def test_shipped_model_gives_distributions_over_the_catalog(picture_model, photos):
    pics = np.stack([decode_picture(p) for p in photos])
    answers = picture_model.answer(pics, k=5)
    for a in answers:
        assert abs(a.probabilities.sum() - 1.0) < 1e-5 and len(a.probabilities) == len(picture_model.chars)
        probs = [p for _, p in a.top]
        assert probs == sorted(probs, reverse=True) and a.mode == a.top[0][0]
        assert all(round(p * 50) == pytest.approx(p * 50, abs=1e-4) for p in probs)  # counts of 50 samples


def test_candidates_restrict_the_answer(picture_model, photos):
    pics = np.stack([decode_picture(p) for p in photos[:1]])
    a = picture_model.answer(pics, k=5, candidates=["🐶", "cat", "🐸"])[0]
    assert {e for e, _ in a.top} <= {"🐶", "🐱", "🐸"}


def test_novel_emoji_is_a_finite_rgba_picture(picture_model, photos):
    from models.drawing import EmojiDecoder

    a = picture_model.answer(np.stack([decode_picture(photos[0])]), k=3)[0]
    pic = picture_model.novel_emoji(a, EmojiDecoder())
    assert pic.shape == (36, 36, 4) and np.isfinite(pic).all()
    assert pic[..., 3].min() < 0.2  # a transparent background, as emoji art has


def test_engine_batches_pictures_and_isolates_a_bad_one(picture_model, photos):
    from bot.core.engine import PictureEngine

    async def run():
        async with PictureEngine(picture_model) as engine:
            jobs = [engine.answer_async(p, k=2) for p in photos] + [engine.answer_async(b"not a picture", k=2)]
            return await asyncio.gather(*jobs, return_exceptions=True), engine.batches

    results, batches = asyncio.run(run())
    assert all(len(r.top) <= 2 for r in results[:4])
    assert isinstance(results[4], PictureError)
    assert batches < 5 + 4  # the good pictures shared model calls


def _rss_mib() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


def test_pictures_that_fail_part_way_give_their_memory_back():
    """A truncated 16-bit PNG fails after its buffers are allocated, and a PNG whose text
    chunks inflate to megabytes fails on open: the error keeps no reference to the buffers
    and the heap is trimmed, so failing five times costs nothing (it held +650 MB)."""
    import io
    import zlib

    import numpy as np
    from PIL import Image, PngImagePlugin

    from models.picture import PictureError, decode_picture

    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 65535, (2000, 2000), dtype=np.uint16)).save(buf, "PNG")
    truncated = buf.getvalue()[: len(buf.getvalue()) // 3]
    info = PngImagePlugin.PngInfo()
    info.add_text("comment", "x" * (8 * 1024 * 1024), zip=True)
    texty = io.BytesIO()
    Image.new("RGB", (8, 8)).save(texty, "PNG", pnginfo=info)
    assert len(texty.getvalue()) < 100_000 and zlib  # 8 MB of text in a small file
    before = _rss_mib()
    for data in [truncated] * 5 + [texty.getvalue()] * 5:
        with pytest.raises(PictureError) as err:
            decode_picture(data)
        assert err.value.__context__ is None and err.value.__cause__ is None
    assert _rss_mib() - before < 60
