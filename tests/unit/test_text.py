import pytest

from models.text import (
    MAX_NGRAMS,
    MAX_TOKENS,
    NGRAM_BUCKETS,
    TextFeaturizer,
    TweetTokenizer,
    Vocabulary,
    ngram_ids,
)


@pytest.fixture(scope="module")
def tok():
    return TweetTokenizer()


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Check https://t.co/abc now", ["check", "<url>", "now"]),
        ("@john hi", ["<user>", "hi"]),
        ("#BestDayEver", ["<hashtag>", "bestdayever"]),
        ("sooooo good", ["soo", "<elong>", "good"]),
        ("yay :) :( ;) :D <3 :P", ["yay", "<smile>", "<sad>", "<wink>", "<lolface>", "<heart>", "<tongue>"]),
        ("I don't know", ["i", "do", "n't", "know"]),
        ("she's here", ["she", "'s", "here"]),
        ("beach @ Venice Beach", ["beach", "<at>", "venice", "beach"]),
        ("at 5pm", ["at", "<number>"]),
        ("WOW", ["<allcaps>", "wow"]),
        ("what!!!!!", ["what", "!!!"]),
    ],
)
def test_tokenizer(tok, text, expected):
    assert tok.tokenize(text) == expected


def test_emojis_become_their_names(tok):
    assert tok.tokenize("🎉🎉") == ["<emoji>", "party", "popper", "<emoji>", "party", "popper"]
    assert tok.tokenize("I ❤️ it") == ["i", "<emoji>", "red", "heart", "it"]


def test_lone_variation_selectors_are_kept_as_a_cue(tok):
    # TweetEval tweets keep U+FE0F where their emojis were removed.
    assert tok.tokenize("fun \ufe0f \ufe0f") == ["fun", "<vs>", "<vs>"]


def test_control_characters_and_huge_texts(tok):
    assert tok.tokenize("a\x00b\x07c\x1b") == ["a", "b", "c"]
    assert len(tok.tokenize("word " * 100_000)) == MAX_TOKENS


@pytest.mark.parametrize(
    "text",
    [
        "x\u2028y\u00a0z\u3000w\u0085v\tu",  # Unicode whitespace between chunks
        "wait:)really :-(no xD!! ;) :P:P <3<3",  # emoticons glued to words
        "@ Venice #sooo @bob www.x.com/y https://t.co/a?b=c 3pm 1st 10,000.5 2nite",
        "didn't!!!...?? she’s WOW—really (yes) [no] «ok» I'M",
    ],
)
def test_chunked_tokens_are_those_of_one_pass_over_the_text(tok, text):
    # The tokenizer tokenises whitespace-separated chunks (cached); no token may span
    # whitespace, so that must equal one pass of the pattern over the whole text.
    from models.text import _chunk_tokens

    assert tok.tokenize(text) == list(_chunk_tokens.__wrapped__(text))


def test_ngrams_are_stable_and_bounded():
    ids = ngram_ids(["hello", "world"])
    assert ids == ngram_ids(["hello", "world"])  # crc32, not Python's salted hash
    assert all(0 < i < NGRAM_BUCKETS for i in ids)
    assert len(ngram_ids(["abcdefghijk"] * 500)) == MAX_NGRAMS
    two = list(ngram_ids(["hi", "you"]))  # unigrams, then the bigram, then each word's char n-grams
    assert two[:3] == [ngram_ids(["hi"])[0], ngram_ids(["you"])[0], ngram_ids(["hi", "you"])[2]]
    assert two[3:] == list(ngram_ids(["hi"])[1:] + ngram_ids(["you"])[1:])


@pytest.mark.parametrize("word", ["hello", "don't", "café", "日本語", "ab", "x", "<url>"])
def test_character_ngram_ids_are_the_crc32_of_each_prefixed_ngram(word):
    """The shipped tables are indexed by these ids: an ASCII word's, hashed by continuing
    the prefix's CRC over byte slices, must be the ids of hashing "c{n}:" + the n-gram, as
    every other word's are."""
    import zlib

    ids = list(ngram_ids([word]))[1:]  # after the word's own id
    w = f"<{word}>"
    expected = [] if word.startswith("<") or len(word) < 2 else [
        zlib.crc32(f"c{n}:{w[i : i + n]}".encode()) % (NGRAM_BUCKETS - 1) + 1
        for n in (3, 4, 5) for i in range(len(w) - n + 1)
    ]  # fmt: skip
    assert ids == expected


def test_featurizer_pads_and_maps_unknown_words():
    vocab = Vocabulary(["<pad>", "<oov>", "hello"])
    b = TextFeaturizer(vocab).featurize(["hello qwfpgj", "hello"])
    assert b.word_ids.tolist() == [[2, 1], [2, 0]]
    assert b.lengths.tolist() == [2, 1]
    assert (b.ngram_ids[1] == 0).any()
