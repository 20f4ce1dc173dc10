"""Punctuation spaced the way the training text spaced it: learned per mark, per pair of
neighbours (in context under rules 2) and per elided word, and the round trip of the bundled
book. The round trip of every shared book is measured by benchmarks/round_trip.py."""

import json

import numpy as np
import pytest
from conftest import REPO
from hypothesis import given, settings
from hypothesis import strategies as st

from rnngen.errors import ConfigError, ModelFileError
from rnngen.files.storage import load_corpus, save_corpus
from rnngen.text.corpus import encode_text, round_trip
from rnngen.text.spacing import SpacingStats
from rnngen.text.tokenize import TokenizerConfig, detokenize, normalized_text, tokenize

PETER_PAN = REPO / "corpora" / "peter_pan.txt"


def learned(text: str) -> TokenizerConfig:
    return encode_text(text, TokenizerConfig()).tokenizer


def again(text: str, config: TokenizerConfig) -> str:
    return detokenize(tokenize(text, config), config)


def test_the_bundled_book_comes_back_line_for_line():
    result = round_trip(PETER_PAN.read_text(encoding="utf-8"))
    assert result.lines > 1700 and result.exact >= 0.995  # 1,717 of 1,719


def test_an_em_dash_attached_on_both_sides():
    text = "She wore a bracelet—if that is the word—and a ring—or two—on her hand."
    config = learned(text)
    assert dict(config.attach)["—"] == "both"
    assert again(text, config) == text
    old = TokenizerConfig(attach=(), elisions=(), pairs=())  # a file without the record
    assert again(text, old) == text.replace("—", " — ")


def test_a_pair_spaced_against_the_marks_own_rules():
    text = "Was he an individual?(17) Or a type?(18) Nobody (said he) knew. (It was late.)"
    config = learned(text)
    assert ("? (", "tight") in config.pairs
    assert again(text, config) == text


def test_an_opening_quote_after_another():
    config = TokenizerConfig()
    assert detokenize(['"', "'", "The", "critic"], config) == "\"'The critic"
    assert detokenize(["said", ",", '"', "'", "Oh"], config) == "said, \"'Oh"


def test_elided_words_learned_from_the_text():
    text = "Nay, 'tis true, 'tis. The hour o' the night, and i' the dark o' the moon, i' faith."
    config = learned(text)
    assert config.elisions == ("'tis", "i'", "o'")
    assert again(text, config) == text
    assert again(text, TokenizerConfig(attach=(), elisions=(), pairs=())) != text


def test_learning_is_deterministic_and_stored(tmp_path):
    text = PETER_PAN.read_text(encoding="utf-8")[:100_000]
    a, b = encode_text(text, TokenizerConfig()), encode_text(text, TokenizerConfig())
    assert a.tokenizer == b.tokenizer and a.tokenizer.attach and a.tokenizer.pairs is not None
    save_corpus(tmp_path / "c.npz", a)
    loaded = load_corpus(tmp_path / "c.npz")
    assert loaded.tokenizer == a.tokenizer
    meta = json.loads(str(np.load(tmp_path / "c.npz")["meta"]))
    assert list(meta["tokenizer"]["attach"]) == sorted(meta["tokenizer"]["attach"])


@pytest.mark.parametrize(
    "settings_, message",
    [
        ({"attach": {",": "sideways"}}, "sides are"),
        ({"attach": {"a": "left"}}, "not a mark"),
        ({"attach": {"'": "left"}}, "not a mark"),
        ({"elisions": ["tis"]}, "not a word with an apostrophe"),
        ({"elisions": ["o'", "'tis"]}, "out of order"),
        ({"pairs": {"? (": "maybe"}}, "bad entry"),
        ({"pairs": {"?(": "tight"}}, "bad entry"),
        ({"pairs": {"word word word": "tight"}}, "bad entry"),
        ({"elisions": ["-i'"]}, "not a word with an apostrophe"),
        ({"rules": 3}, "rules 3 are not known"),
    ],
)
def test_bad_records_are_refused(tmp_path, settings_, message):
    with pytest.raises(ConfigError, match=message):
        TokenizerConfig(**settings_)
    path = tmp_path / "c.npz"
    save_corpus(path, encode_text("Hello, world.", TokenizerConfig()))
    with np.load(path, allow_pickle=False) as f:
        arrays = dict(f)
    meta = json.loads(str(arrays["meta"]))
    meta["tokenizer"].update(settings_)
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(path, **arrays)
    with pytest.raises(ModelFileError, match=message):
        load_corpus(path)


_WORDS = st.lists(st.text(alphabet="abcdefgh", min_size=1, max_size=6), min_size=2, max_size=30)
_SIDE = st.sampled_from(["left", "right", "both", "none"])
_MARKS = ["—", ",", "(", ")", "*", ";"]


@settings(max_examples=100, deadline=None)
@given(
    words=_WORDS,
    sides=st.fixed_dictionaries({m: _SIDE for m in _MARKS}),
    marks=st.lists(st.sampled_from([*_MARKS, None, None]), min_size=30, max_size=30),
)
def test_a_text_spaced_consistently_comes_back_exactly(words, sides, marks):
    """Whatever side each mark takes, if a text keeps to it, its round trip is exact."""
    text = words[0]
    for word, mark in zip(words[1:], marks, strict=False):
        if mark is None:
            text += " " + word
            continue
        side = sides[mark]
        text += ("" if side in ("left", "both") else " ") + mark
        text += ("" if side in ("right", "both") else " ") + word
    config = learned(text)
    assert again(text, config) == normalized_text(text, config)


def test_words_elided_at_their_end_and_such_endings():
    """A dialect elides by rule: every word seen elided at its end is learned, and an ending
    elided in three different words stands for any word so ending (`hoverin'`, seen nowhere)."""
    text = (
        "He was singin' an' talkin' and laughin' all day, an' then walkin' home, de do' shut.\n"
        "She said 'Hello there,' and went in. The girls' school was shut.\n"
    )
    config = learned(text)
    assert {"-in'", "an'", "do'", "girls'", "walkin'"} <= set(config.elisions)
    assert "there'" not in config.elisions  # a quote closed after a word opened after none
    assert again(text, config) == normalized_text(text, config)
    assert again("Angels hoverin' round him.", config) == "Angels hoverin' round him."
    old = encode_text(text, TokenizerConfig(rules=1)).tokenizer
    assert old.elisions == ("an'",) and again(text, old) != text


def test_pairs_in_the_context_of_their_neighbours():
    """Footnote marks: attached to the word before and spaced from the one after in the text
    (`alien.* Hence`), but attached to the note's first word at the start of a line."""
    text = "It is alien.* Hence the rest, as said.* So be it.\n\n*See below.\n*And more.\n"
    config = learned(text)
    assert ("line * word", "tight") in config.pairs or ("* word", "spaced") in config.pairs
    assert again(text, config) == normalized_text(text, config)


def test_runs_of_marks_take_their_own_side():
    text = "THE SPOT . . . . 24\nTHE END . . . . . 30\nHe said... no. Miss ------, and the--end."
    config = learned(text)
    assert dict(config.attach)[". . . ."] == "none" and dict(config.attach)["..."] == "left"
    assert again(text, config) == normalized_text(text, config)


@settings(max_examples=60, deadline=None)
@given(text=st.text(alphabet=st.sampled_from(list("ab .'’_*-\n")), max_size=200))
def test_learning_does_not_depend_on_where_lines_are_cut(text):
    """Counts over a text's lines, added one line at a time, are the whole text's."""
    whole, parts = SpacingStats(), SpacingStats()
    whole.add(text)
    for line in text.splitlines(keepends=True):
        parts.add(line)
    assert vars(parts) == vars(whole)


def test_dialogue_quoted_with_the_apostrophe():
    """A text that opens its quotes with the straight apostrophe (`'Oh`, `said, 'What`) learns
    none of those as elided words, nor the words that end quotes (`know,' said`), but still the
    plurals' possessives (`dwarfs' cottage`)."""
    text = (
        "'Oh dear!' said Alice. 'What now?' 'Nothing,' said the Cat, 'nothing at all.'\n\n"
        "'Oh, I know,' said Alice; 'it's the dwarfs' hut.' 'Well,' said the Cat, 'I shan't.'\n\n"
    ) * 3
    config = learned(text)
    assert config.elisions == ("dwarfs'",)
    assert again(text, config) == normalized_text(text, config)


def test_an_apostrophe_after_a_lone_underscore():
    assert learned("a _' b _' c _' d").elisions == ()  # not the empty word `'`
