import numpy as np
import pytest

from models.catalog import UnknownEmojiError


def test_catalog_covers_emoji_data_with_pictures(catalog):
    assert len(catalog) >= 1850
    chars = catalog.chars
    assert len(set(chars)) == len(chars)


@pytest.mark.parametrize(
    "query, expected",
    [
        ("❤", "❤️"), ("❤️", "❤️"), ("☀", "☀️"), ("☀️", "☀️"),
        ("👍🏽", "👍"), ("👍🏿", "👍"), ("heart", "❤️"), (":heart:", "❤️"), ("+1", "👍"),
        ("thumbsup", "👍"), ("thumbsup::skin-tone-3", "👍"), (":+1::skin-tone-6:", "👍"),
        ("tada", "🎉"), ("🇺🇸", "🇺🇸"), ("#️⃣", "#️⃣"), ("  🎉 ", "🎉"),
    ],
)  # fmt: skip
def test_lookups(catalog, query, expected):
    assert catalog.lookup(query).char == expected


@pytest.mark.parametrize(
    "token, expected",
    [
        ("😂", ["😂"]), (":joy:", ["😂"]), ("😂😂😂", ["😂"] * 3), ("🔥💯", ["🔥", "💯"]),
        ("👍🏽🙏", ["👍", "🙏"]), ("✌🏻✌", ["✌️", "✌️"]), ("🇺🇸🇬🇧", ["🇺🇸", "🇬🇧"]),
        ("👨\u200d👩\u200d👧", ["👨\u200d👩\u200d👧"]),  # a sequence the catalog has: whole
        ("🤷🏽\u200d♀️😂", ["🤷\u200d♀️", "😂"]),  # skin-toned inside a sequence
        ("👍\u200d🦀\u200d🦀🎉", ["👍", "🎉"]),  # a sequence it lacks: its first part
        ("😂,", ["😂"]), ("qqq", []), (":fire::100:", ["🔥", "💯"]),
        ("\ufe0f", []), ("\ufe0f\U0001F3FD😂", ["😂"]),  # a stray selector or skin tone is no emoji
    ],
)  # fmt: skip
def test_split_finds_the_emojis_people_run_together(catalog, token, expected):
    assert [e.char for e in catalog.split(token)] == [catalog.lookup(x).char for x in expected]


def test_find_gives_each_emoji_of_a_running_text_with_its_span(catalog):
    text = "I ❤️ flying ☺️👍🏽 at 10:30:45 :tada: :thumbsup::skin-tone-3: ❤️\u200d🔥!"
    found = [(text[a:b], e.char) for a, b, e in catalog.find(text)]
    heart, smile, thumbs, tada = (catalog.lookup(x).char for x in ("❤", "☺", "👍", "🎉"))
    assert found == [
        ("❤️", heart),
        ("☺️", smile),
        ("👍🏽", thumbs),  # the skin tone is inside the span
        (":tada:", tada),  # a Slack code; "10:30:45" is no code
        (":thumbsup::skin-tone-3:", thumbs),
        ("❤️\u200d🔥", catalog.lookup("❤️\u200d🔥").char),  # a sequence the catalog has: whole
    ]


def test_entry_fields(catalog):
    e = catalog.lookup("🎉")
    assert e.short_names == ("tada",)
    assert e.name == "PARTY POPPER"
    assert e.category == "Activities"
    assert "party popper" in e.descriptions
    heart = catalog.lookup("heart")
    assert heart.char == "\u2764\ufe0f"  # fully qualified


@pytest.mark.parametrize("bad", ["", "   ", "nope_not_an_emoji", "thumbsup::skin-tone-9", "qqq", None, 42])
def test_unknown_emoji_is_a_clear_error(catalog, bad):
    with pytest.raises(UnknownEmojiError) as err:
        catalog.lookup(bad)
    assert "unknown emoji" in str(err.value)
    assert bad not in catalog


def test_pictures_are_rgba_in_unit_range(catalog):
    pics = catalog.pictures()
    assert pics.shape == (len(catalog), 36, 36, 4)
    assert pics.dtype == np.float32
    assert 0.0 <= pics.min() and pics.max() <= 1.0
    alpha = pics[..., 3]
    assert (alpha < 0.01).mean() > 0.1  # transparent background kept


def test_emoji2vec_descriptions_join_when_data_dir_given(data_dir):
    from models.catalog import EmojiCatalog

    with_data = EmojiCatalog.load(data_dir)
    assert len(with_data.lookup("🌝").descriptions) > len(EmojiCatalog.load().lookup("🌝").descriptions)


def test_emoji_index_rows_and_names():
    from models.catalog import EmojiIndex, UnknownEmojiError

    index = EmojiIndex(["😂", "❤️", "🍕"])
    assert index.rows(["pizza", "🍕", "❤", "heart"]).tolist() == [2, 1]  # short names, variants, duplicates
    assert index.names(["joy"])[1] == ["😂"]
    rows, names = index.names(None)
    assert rows.tolist() == [0, 1, 2] and names == ["😂", "❤️", "🍕"]
    with pytest.raises(UnknownEmojiError):
        index.rows(["🐶"])  # in the catalog, not in these artifacts
    with pytest.raises(ValueError, match="empty"):
        index.rows([])


def test_labelled_texts_label_rows_fold_the_mapping_and_follow_an_artifact_order(catalog):
    """The one place TweetEval's label ids become catalog rows (`train sqam`, `train
    sentence`, `train catalog-head`): the mapping's "❤" is ❤️, and an artifact's own emoji
    order gives other rows than the catalog's."""
    from training.data import LabelledTexts

    te = LabelledTexts(["a", "b", "c"], np.asarray([1, 0, 1]), ["❤", "😂"])
    rows = te.label_rows(catalog)
    assert [catalog.chars[r] for r in rows] == ["❤️", "😂"]
    assert [catalog.chars[r] for r in rows[te.labels]] == ["😂", "❤️", "😂"]
    order = {"😂": 0, "❤️": 7}
    assert te.label_rows(catalog, order).tolist() == [7, 0]
    with pytest.raises(UnknownEmojiError):
        LabelledTexts(["a"], np.asarray([0]), ["not an emoji"]).label_rows(catalog)
