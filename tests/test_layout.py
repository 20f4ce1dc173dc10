"""Wrapping generated text to a width (rnngen/layout.py): lines within the width, every line break
of the text kept, and the same output however the text is cut into pieces."""

from hypothesis import given
from hypothesis import strategies as st

from rnngen.text.layout import Wrapper, wrap_pieces, wrap_text

PARAGRAPH = (
    "Of course they lived at 14 [their house number on their street], and until Wendy came her "
    "mother was the chief one."
)


def test_lines_fill_up_to_the_width():
    out = wrap_text(PARAGRAPH, 30)
    lines = out.split("\n")
    assert all(len(line) <= 30 for line in lines)
    assert " ".join(lines) == PARAGRAPH
    for line, following in zip(lines, lines[1:], strict=False):
        assert len(line) + 1 + len(following.split(" ")[0]) > 30  # the next word did not fit


def test_line_breaks_in_the_text_are_kept():
    text = "one two three four\n\nfive six seven eight nine\nten"
    assert wrap_text(text, 9) == "one two\nthree\nfour\n\nfive six\nseven\neight\nnine\nten"


def test_a_word_longer_than_the_width_has_its_own_line():
    assert wrap_text("a bb incomprehensibilities c", 6) == "a bb\nincomprehensibilities\nc"


def test_no_width_leaves_the_text_alone():
    text = "  odd  spacing \n kept "
    assert wrap_text(text, None) == text
    assert wrap_text(text, 0) == text


def test_trailing_spaces_and_paragraph_end():
    assert wrap_text("one two \n", 20) == "one two\n"
    assert wrap_text("one two ", 20) == "one two"
    assert wrap_text("aaaaaa a ", 8) == "aaaaaa a"  # found by hypothesis: a space past the width


texts = st.text(alphabet=st.sampled_from("ab .,\n“"), max_size=120)


@given(texts, st.integers(1, 15), st.lists(st.integers(0, 120), max_size=12))
def test_pieces_give_the_same_text_as_the_whole(text, width, cuts):
    cuts = sorted({min(c, len(text)) for c in cuts})
    pieces = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
    assert "".join(wrap_pieces(pieces, width)) == wrap_text(text, width)
    wrapper = Wrapper(width)
    assert "".join(wrapper.push(ch) for ch in text) + wrapper.finish() == wrap_text(text, width)


@given(texts, st.integers(1, 15))
def test_only_spaces_become_line_breaks(text, width):
    out = wrap_text(text, width)
    assert out.split() == text.split()
    assert out.count("\n") >= text.count("\n")
    for line in out.split("\n"):
        assert len(line) <= width or " " not in line.strip(" ")
