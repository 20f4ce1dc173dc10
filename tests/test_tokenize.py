"""Tokenizers, detokenising and the vocabulary."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnngen.errors import ConfigError
from rnngen.files.storage import read_tokenizer
from rnngen.text.corpus import encode_text
from rnngen.text.tokenize import (
    EOS,
    UNK,
    TokenizerConfig,
    detokenize,
    normalize_book_text,
    normalized_text,
    stream_detokenize,
    tokenize,
)
from rnngen.text.vocab import build_vocab

BOOK = TokenizerConfig()
KEEP = TokenizerConfig(lines="keep")


def test_book_tokens():
    text = "“Oh, why can't you remain like this for ever!” said Peter.\n\nThe end."
    assert tokenize(text, BOOK) == [
        "“", "Oh", ",", "why", "can't", "you", "remain", "like", "this", "for", "ever", "!",
        "”", "said", "Peter", ".", "\n\n", "The", "end", ".",
    ]  # fmt: skip


@pytest.mark.parametrize(
    "text",
    [
        "said Peter.",
        "“Oh, why can't you remain like this for ever!” This was all.",
        "He said, 'Thank you, kind sir.' Then he left.",
        "What do you mean by 'O father'? Mr. Darling demanded.",
        "It was a well-known fact (at 6:30, they say) that 3.5 of them [all] existed; or not?",
        'She said "hello" and "goodbye."',
        "Line one,\nline two.\n\nA new paragraph.",
        "Marooners' Rock stood alone.",
        "‘Curly quotes,’ she said.",
    ],
)
def test_book_round_trip(text):
    assert detokenize(tokenize(text, KEEP), KEEP) == text


def test_normalisation():
    assert normalize_book_text("a  b\t c \r\nd\r\n\r\n\r\n\r\ne  ") == "a b c\nd\n\ne"
    assert tokenize("a\n\n\n\nb", BOOK) == ["a", "\n\n", "b"]


def test_lowercase():
    assert tokenize("The Games", TokenizerConfig(lowercase=True)) == ["the", "games"]


def test_char_level_round_trip():
    config = TokenizerConfig(level="char")
    text = "Hi, Wendy!\n  Two spaces."
    assert tokenize(text, config) == list(text)
    assert detokenize(tokenize(text, config), config) == text


def test_whitespace_tokenizer():
    config = TokenizerConfig(scheme="whitespace")
    text = " the <unk> cat sat \n\n a dog \n"
    tokens = tokenize(text, config)
    assert tokens == ["the", UNK, "cat", "sat", EOS, EOS, "a", "dog", EOS]
    assert detokenize(tokens, config) == "the <unk> cat sat\n\na dog\n"
    corpus = encode_text(text, config)
    assert corpus.vocab.tokens[:2] == (UNK, EOS)
    assert corpus.ids[1] == 0  # the literal <unk> is the unknown token


def test_invalid_settings():
    with pytest.raises(ConfigError):
        TokenizerConfig(level="byte")
    with pytest.raises(ConfigError):
        TokenizerConfig(level="char", scheme="whitespace")


def test_vocab_order_and_limits():
    tokens = "b a c a b a d e e".split()
    vocab = build_vocab(tokens)
    assert vocab.tokens == (UNK, "a", "b", "e", "c", "d")  # frequency, then string order
    assert vocab.counts == (0, 3, 2, 2, 1, 1)
    small = build_vocab(tokens, max_size=2)
    assert small.tokens == (UNK, "a", "b")
    assert small.counts[0] == 4  # c, d, e, e became <unk>
    assert build_vocab(tokens, min_count=2).tokens == (UNK, "a", "b", "e")
    assert list(small.encode(["a", "zzz", "b"])) == [1, 0, 2]
    assert small.decode([1, 0]) == ["a", UNK]


def test_vocab_is_deterministic(book_text):
    a = encode_text(book_text, BOOK)
    b = encode_text(book_text, BOOK)
    assert a.vocab == b.vocab
    assert (a.ids == b.ids).all()


def test_book_corpus_round_trips_in_vocabulary(book_text):
    """Decoding the ids of a book gives back its normalised text (spacing rules included)."""
    corpus = encode_text(book_text, BOOK)
    assert corpus.unk_rate == 0
    text = detokenize(corpus.vocab.decode(corpus.ids), BOOK)
    lines, original = text.split("\n"), normalized_text(book_text, BOOK).split("\n")
    matching = sum(a == b for a, b in zip(lines, original, strict=False))
    assert len(lines) == len(original) and matching / len(lines) > 0.99


def test_breaks_in_a_row_print_as_at_most_one_blank_line():
    """A model can emit line and paragraph breaks one after another; a tokenized text never has
    them (three or more line breaks are one paragraph break). Printed, they are normalised the
    same way, streamed or not."""
    from rnngen.text.tokenize import NEWLINE, PARAGRAPH, stream_detokenize

    config = TokenizerConfig()
    for breaks in ([PARAGRAPH, PARAGRAPH], [NEWLINE, PARAGRAPH], [PARAGRAPH, NEWLINE, NEWLINE]):
        tokens = ["Wendy", *breaks, "Peter"]
        assert detokenize(tokens, config) == "Wendy\n\nPeter"
        assert "".join(stream_detokenize(tokens, config)) == "Wendy\n\nPeter"
    assert detokenize(["Wendy", NEWLINE, "Peter"], config) == "Wendy\nPeter"
    assert detokenize(["Wendy", NEWLINE, NEWLINE, "Peter"], config) == "Wendy\n\nPeter"


# Held-back novels showed these patterns; tokenizer rules 2 round-trip them (see RULES).
PATTERNS = [
    "He took his M.A. degree at Oxford, i.e. the old way, and wrote to S.L.O. at once.",
    "I.O.U. was all it said, and P.S. under it.",
    'It was the end of her story. "To be sure," said he. "Quite so."',
    '"I went there, and I saw it all.\n\n"Then I came back. That is all," he said. '
    'It was the end of his story. "To be sure," said she.',
    "The word was _Lady:_ and the citation _Hackluyt._ and then _really!_ it ended.",
    "(_i.e._ a whale) and _Mrs._ _Elton_ too, _A.D._ 1820.",
    "He paused . . . and went on. . . . Then:\n\n* * *\n\nA new part.",
    "“Tell ’em I’m coming,” he said; “’tis late, an’ ’ud be later. ‘’Tis so,’ said she.”",
    "Angels hoverin' round him, singin' and talkin' and laughin' all night long.",
    "On October 11, 1805, with 1,000 men, 3.5 guns and B---- at 6:30.",
    "The rest--he knew it--was nothing.... Wait!!! Then ----!",
]


@pytest.mark.parametrize("pattern", PATTERNS)
def test_rules_2_round_trip_the_patterns(book_text, pattern):
    """Each pattern comes back exactly, with the spacing learned from a book holding it."""
    config = encode_text(book_text + "\n\n" + pattern + "\n", BOOK).tokenizer
    assert config.rules == 2
    assert detokenize(tokenize(pattern, config), config) == normalized_text(pattern, config)


def test_rules_2_tokens():
    tokens = tokenize("M.A. i.e. ’em . . . * * * ... -- 1,000 don’t", BOOK)
    assert tokens == ["M.A", ".", "i.e", ".", "’em", ". . .", "* * *", "...", "--", "1", ",",
                      "000", "don’t"]  # fmt: skip


# Made with the rules of files written before `rules` existed: their settings (no `rules`) and
# the tokens and text the code of that time gave for LEGACY_TEXT, which files made then must
# keep giving, so old models score, resume and sample as before.
LEGACY_TEXT = (
    "He took his M.A. degree, i.e. the S.L.O. kind, on October 11, 1805, with 1,000 men.\n"
    'She ended her story. "To be sure," she said. "Yes."\n\n'
    "It was _Lady:_ and _Hackluyt._ (_i.e._ a _whale!_) and _Mrs._ _Elton_ too.\n"
    "He paused . . . and went on. * * * They like ’em; ’tis true, ’ud he? "
    "Angels hoverin' roun' him, 'bout that.\n"
    "The rest--he knew--was B---- and nothing.... Wait!!! ‘’Tis so,’ said she.\n"
)
LEGACY_STORED = {
    "level": "word", "scheme": "book", "lowercase": False, "lines": "auto",
    "attach": {"!": "left", "(": "right", ")": "left", "*": "none", ",": "left", "-": "both",
               ".": "left", ":": "left", ";": "left", "?": "left", "’": "left"},
    "elisions": ["'bout"], "pairs": {", number": "tight"},
}  # fmt: skip
LEGACY_TOKENS = [
    'He', 'took', 'his', 'M', '.', 'A', '.', 'degree', ',', 'i', '.', 'e', '.', 'the', 'S', '.',
    'L', '.', 'O', '.', 'kind', ',', 'on', 'October', '11', ',', '1805', ',', 'with', '1', ',',
    '000', 'men', '.', '\n', 'She', 'ended', 'her', 'story', '.', '"', 'To', 'be', 'sure', ',',
    '"', 'she', 'said', '.', '"', 'Yes', '.', '"', '\n\n', 'It', 'was', '_Lady', ':', '_', 'and',
    '_Hackluyt', '.', '_', '(', '_i', '.', 'e', '.', '_', 'a', '_whale', '!', '_', ')', 'and',
    '_Mrs', '.', '_', '_Elton_', 'too', '.', '\n', 'He', 'paused', '.', '.', '.', 'and', 'went',
    'on', '.', '*', '*', '*', 'They', 'like', '’', 'em', ';', '’', 'tis', 'true', ',', '’', 'ud',
    'he', '?', 'Angels', 'hoverin', "'", 'roun', "'", 'him', ',', "'", 'bout', 'that', '.', '\n',
    'The', 'rest', '-', '-', 'he', 'knew', '-', '-', 'was', 'B', '-', '-', '-', '-', 'and',
    'nothing', '.', '.', '.', '.', 'Wait', '!', '!', '!', '‘', '’', 'Tis', 'so', ',', '’', 'said',
    'she', '.', '\n',
]  # fmt: skip
LEGACY_DETOKENIZED = (
    "He took his M. A. degree, i. e. the S. L. O. kind, on October 11,1805, with "
    "1,000 men.\n"
    'She ended her story. "To be sure," she said. "Yes."\n'
    "\n"
    "It was _Lady: _ and _Hackluyt. _ (_i. e. _ a _whale! _) and _Mrs. _ _Elton_ "
    "too.\n"
    "He paused... and went on. * * * They like’ em;’ tis true,’ ud he? Angels "
    "hoverin 'roun' him, 'bout that.\n"
    "The rest--he knew--was B----and nothing.... Wait!!! ‘’ Tis so,’ said she.\n"
)


def test_files_without_rules_tokenize_as_before():
    config = read_tokenizer(LEGACY_STORED)
    assert config.rules == 1
    tokens = tokenize(LEGACY_TEXT, config)
    assert tokens == LEGACY_TOKENS
    assert detokenize(tokens, config) == LEGACY_DETOKENIZED
    assert "".join(stream_detokenize(tokens, config)) == LEGACY_DETOKENIZED
    learned = encode_text(LEGACY_TEXT, TokenizerConfig(rules=1)).tokenizer
    assert dict(learned.attach) == {
        "!": "both", "(": "right", ")": "left", "*": "none", ",": "left", "-": "both",
        ".": "both", ":": "both", ";": "left", "?": "left", "’": "right",
    }  # fmt: skip
    assert learned.elisions == () and learned.pairs == ()
    new = encode_text(LEGACY_TEXT, BOOK).tokenizer
    assert detokenize(tokenize(LEGACY_TEXT, new), new) == normalized_text(LEGACY_TEXT, new)


def test_unknown_rules_are_refused():
    with pytest.raises(ConfigError, match="rules 3 are not known"):
        TokenizerConfig(rules=3)


RULES_2_TOKENS = ['"', "'", "’em", "_Lady", "_", "York_", "...", ". . .", "--", "*", "M.A", ".",
                  ",", "1", "000", "a", "hoverin", "o", "\n", "\n\n", "”", "—", "("]  # fmt: skip
RULES_2_CONFIG = TokenizerConfig(
    attach=(("*", "left"), ("...", "left")),
    elisions=("'em", "-in'", "o'"),
    pairs=(("* (", "tight"), (". ” —", "tight"), ("line * word", "tight"), ("” — > _", "spaced")),
)


@settings(max_examples=300, deadline=None)
@given(tokens=st.lists(st.sampled_from(RULES_2_TOKENS), max_size=25))
def test_rules_2_stream_detokenizer_matches_detokenize(tokens):
    """Rules 2 look one token ahead and two back, as the streamer allows."""
    expected = detokenize(tokens, RULES_2_CONFIG)
    assert "".join(stream_detokenize(tokens, RULES_2_CONFIG)) == expected


def test_rules_2_straight_double_quotes_by_their_neighbours():
    """Where the neighbours tell, a straight quote's side does not depend on what is open: none
    opens at the end of a line or before a closing mark, every one after an opening mark."""
    text = 'He said "no", and left ("yes").\n\n"Come here," she said.\n"I will," he said--"now."\n'
    config = encode_text(text, BOOK).tokenizer
    assert detokenize(tokenize(text, config), config) == normalized_text(text, config)
    unbalanced = 'He said "no and left.\n"Yes," she said.\n'  # one quote never closed
    assert detokenize(tokenize(unbalanced, config), config) == unbalanced
