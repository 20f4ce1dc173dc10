"""Joining the printer's line breaks (`--lines`, rnngen/linebreaks.py): on real books (the
bundled Peter Pan and excerpts of War and Peace and `tiny_shakespeare.txt` in tests/fixtures), on
hand-made paragraphs, and whatever the pieces a text is read in."""

import io
import json

import numpy as np
import pytest
from conftest import REPO
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from rnngen.cli.app import app
from rnngen.errors import ConfigError
from rnngen.files.storage import load_corpus, save_corpus
from rnngen.text.corpus import encode_file, encode_text, iter_text
from rnngen.text.linebreaks import LineStats, join_lines, text_layout
from rnngen.text.tokenize import NEWLINE, TokenizerConfig, tokenize

AUTO = TokenizerConfig()
KEEP = TokenizerConfig(lines="keep")
JOIN = TokenizerConfig(lines="join")
runner = CliRunner()


BOOKS = {
    "peter_pan.txt": REPO / "corpora" / "peter_pan.txt",
    "war_and_peace.txt": REPO / "tests" / "fixtures" / "war_and_peace_excerpt.txt",
    "tiny_shakespeare.txt": REPO / "tests" / "fixtures" / "tiny_shakespeare_excerpt.txt",
}


def book(name: str) -> str:
    return BOOKS[name].read_text(encoding="utf-8")


def joined_in(name: str, excerpt: str) -> str:
    """The excerpt as `auto` reads it inside the whole book (the book's own layout)."""
    text = book(name)
    assert excerpt in text
    return join_lines(excerpt, layout=text_layout(text))


def test_peter_pan_prose_is_joined_and_its_songs_kept():
    prose = (
        "All children, except one, grow up. They soon know that they will grow\n"
        "up, and the way Wendy knew was this. One day when she was two years old\n"
        "she was playing in a garden, and she plucked another flower and ran with\n"
    )
    assert joined_in("peter_pan.txt", prose) == prose.replace("\n", " ")[:-1] + "\n"
    song = (
        "     “Avast belay, yo ho, heave to,\n"
        "     A-pirating we go,\n"
        "     And if we're parted by a shot\n"
        "     We're sure to meet below!”\n"
    )
    assert joined_in("peter_pan.txt", song) == song


def test_war_and_peace_prose_is_joined_and_its_verse_kept():
    prose = (
        "“Well, Prince, so Genoa and Lucca are now just family estates of the\n"
        "Buonapartes. But I warn you, if you don’t tell me that this means war,\n"
    )
    assert joined_in("war_and_peace.txt", prose).count("\n") == 1
    verse = "   Bring glory then to Alexander’s reign\n   And on the throne our Titus shield.\n"
    assert joined_in("war_and_peace.txt", verse) == verse
    text = book("war_and_peace.txt")
    keep, auto = tokenize(text, KEEP), tokenize(text, AUTO)
    assert keep.count(NEWLINE) > 400 and auto.count(NEWLINE) <= 10  # the verse's 7 and the end
    assert [t for t in keep if t != NEWLINE] == [t for t in auto if t != NEWLINE]


def test_shakespeare_keeps_its_verse_and_joins_its_prose():
    verse = "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n"
    assert joined_in("tiny_shakespeare.txt", verse) == verse
    verse = "ANTONIO:\nNoble Sebastian,\nThou let'st thy fortune sleep--die, rather; wink'st\n"
    assert joined_in("tiny_shakespeare.txt", verse) == verse
    prose = (
        "First Citizen:\n"
        "We are accounted poor citizens, the patricians good.\n"
        "What authority surfeits on would relieve us: if they\n"
        "would yield us but the superfluity, while it were\n"
    )
    joined = joined_in("tiny_shakespeare.txt", prose)
    assert joined == "First Citizen:\n" + prose[15:].replace("\n", " ")[:-1] + "\n"
    text = book("tiny_shakespeare.txt")
    kept = tokenize(text, AUTO).count(NEWLINE) / tokenize(text, KEEP).count(NEWLINE)
    assert kept > 0.85  # 0.89 of the excerpt, 0.92 of the whole


WRAPPED = (
    "It was the best of times, it was the worst of times, it was the age of\n"
    "wisdom, it was the age of foolishness, it was the epoch of belief, it\n"
    "was the epoch of incredulity, it was the season of Light, it was the\n"
    "season of Darkness, it was the spring of hope, it was the winter of\n"
    "despair.\n"
)
PARAGRAPH = WRAPPED.rstrip("\n")


@pytest.mark.parametrize(
    "kept",
    [
        "Roses are red,\nViolets are blue,\nSugar is sweet,\nAnd so are you.",  # verse
        "- apples\n- pears and a few more things to buy\n- plums",  # a list
        "1. Wake up\n2. Eat\n3. Sleep",
        "CONTENTS\nChapter 1 PETER BREAKS THROUGH\nChapter 2 THE SHADOW",  # short lines
        "Mr. John Darling,\n14 Bloomsbury Street,\nLondon.",  # an address
    ],
)
def test_hand_made_paragraphs_that_keep_their_lines(kept):
    text = WRAPPED + "\n" + kept + "\n\n" + WRAPPED
    prose = join_lines(WRAPPED)
    assert prose.count("\n") == 1
    assert join_lines(text) == prose + "\n" + kept + "\n\n" + prose
    joined = kept.replace("\n", " ")  # join: every break inside a paragraph
    assert join_lines(text, "join") == prose + "\n" + joined + "\n\n" + prose


def test_heading_above_a_wrapped_paragraph_keeps_its_break():
    text = "CHAPTER I\n" + WRAPPED
    assert join_lines(text * 3).startswith("CHAPTER I\nIt was the best of times, it was the")
    assert join_lines(text).split("\n")[1].endswith("winter of despair.")


def test_keep_and_tokens_other_than_line_breaks():
    assert join_lines(WRAPPED, "keep") == WRAPPED
    assert join_lines("a\r\nb\rc", "keep") == "a\nb\nc"
    keep, auto = tokenize(PARAGRAPH, KEEP), tokenize(PARAGRAPH, AUTO)
    assert keep.count(NEWLINE) == 4 and NEWLINE not in auto
    assert [t for t in keep if t != NEWLINE] == auto


def test_char_and_whitespace_keep_their_lines():
    for config in (TokenizerConfig(level="char"), TokenizerConfig(scheme="whitespace")):
        assert config.lines == "keep" and not config.joins_lines
    with pytest.raises(ConfigError, match="tokenizer.lines join is for word-level book text"):
        TokenizerConfig(level="char", lines="join")
    with pytest.raises(ConfigError, match="tokenizer.lines must be one of .*, got 'some'"):
        TokenizerConfig(lines="some")


def _pieces(text, chunk_bytes):
    data = io.BytesIO(text.encode())
    return list(iter_text(data, "t", chunk_bytes=chunk_bytes, paragraphs=True))


@settings(max_examples=40, deadline=None)
@given(start=st.integers(0, 25_000), chunk=st.integers(50, 3000))
def test_decisions_do_not_depend_on_where_pieces_are_cut(start, chunk):
    text = book("war_and_peace.txt")[start : start + 12_000] + book("tiny_shakespeare.txt")[:4000]
    pieces = _pieces(text, chunk)
    assert "".join(pieces) == text
    assert all(p.endswith("\n") for p in pieces[:-1])
    whole = LineStats()
    whole.add(text)
    parts = LineStats()
    for piece in pieces:
        parts.add(piece)
    assert vars(parts) == vars(whole)
    layout = whole.layout()
    assert [t for p in pieces for t in tokenize(p, AUTO, layout)] == tokenize(text, AUTO)


_LINE = st.text(alphabet=st.sampled_from(list("aA .,-\t")), max_size=90)


@settings(max_examples=150, deadline=None)
@given(lines=st.lists(_LINE, max_size=30), ends=st.lists(st.sampled_from(["\n", "\r\n", "\r"])))
def test_line_stats_count_the_breaks_that_are_joined(lines, ends):
    text = "".join(line + ends[i % len(ends)] if ends else line for i, line in enumerate(lines))
    stats = LineStats()
    stats.add(text)
    layout = stats.layout()
    for config in (AUTO, JOIN):
        removed = tokenize(text, KEEP).count(NEWLINE) - tokenize(text, config).count(NEWLINE)
        assert removed == stats.joined(layout, config.lines)


def test_encode_file_counts_what_it_writes(tmp_path):
    text = (WRAPPED + "\n") * 4000 + "Roses are red,\nViolets are blue,\nSugar is sweet.\n"
    path = tmp_path / "book.txt"
    path.write_text(text, encoding="utf-8")
    streamed, whole = encode_file(str(path), AUTO), encode_text(text, AUTO)
    assert len(text) > 2**20 and streamed.vocab == whole.vocab
    assert streamed.tokenizer == whole.tokenizer
    np.testing.assert_array_equal(streamed.ids, whole.ids)
    assert streamed.vocab.counts[streamed.vocab.id(NEWLINE)] == 3  # the verse and the end


def test_a_file_without_the_setting_keeps_its_lines(tmp_path):
    path = tmp_path / "old.npz"
    save_corpus(path, encode_text(WRAPPED, KEEP))
    with np.load(path, allow_pickle=False) as f:
        arrays = dict(f)
    meta = json.loads(str(arrays["meta"]))
    for key in ("lines", "attach", "elisions", "pairs"):
        del meta["tokenizer"][key]
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(path, **arrays)
    old = TokenizerConfig(lines="keep", attach=(), elisions=(), pairs=())
    assert load_corpus(path).tokenizer == old
    meta["tokenizer"]["lines"] = "sometimes"
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(path, **arrays)
    result = runner.invoke(app, ["train", str(path), "-o", str(tmp_path / "m.npz"), "-q"])
    wanted = "tokenizer.lines must be one of auto, keep, join, got 'sometimes'"
    assert result.exit_code == 65 and wanted in result.stderr


@pytest.mark.parametrize("lines, breaks", [("keep", 4), ("auto", 0), ("join", 0), (None, 0)])
def test_cli_lines_option(tmp_path, lines, breaks):
    path = tmp_path / "t.txt"
    path.write_text(WRAPPED + "\n" + PARAGRAPH, encoding="utf-8")
    option = [] if lines is None else ["--lines", lines]
    out = tmp_path / "t.npz"
    result = runner.invoke(app, ["encode", str(path), "-o", str(out), *option])
    assert result.exit_code == 0, result.stderr
    corpus = load_corpus(out)
    assert corpus.tokenizer.lines == (lines or "auto")
    n = corpus.vocab.counts[corpus.vocab.id(NEWLINE)] if NEWLINE in corpus.vocab else 0
    assert n == breaks * 2


def test_cli_lines_errors(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text(WRAPPED, encoding="utf-8")
    result = runner.invoke(app, ["encode", str(path), "--lines", "join", "--level", "char"])
    assert result.exit_code == 2 and "--lines join is for word-level book text" in result.stderr


DASHED = (
    "It was the best of times, it was the worst of times--it was the age of\n"
    "wisdom, it was the age of foolishness, it was the epoch of belief, it\n"
    "was the epoch of incredulity, it was the season of Light, it was the—\n"
    "season of Darkness, it was the spring of hope, it was the winter of\n"
    "despair.\n"
)


def test_a_wrap_after_a_dash_is_joined_without_a_space():
    """Books print a dash attached to its word closed (`times--it`): the printer's wrap is the
    only place a space follows one. Rules 1 (files made before) joined it with a space."""
    joined = join_lines(DASHED * 3).split("\n")[0]
    assert "the worst of times--it was the age of wisdom" in joined
    assert "it was the—season of Darkness" in joined
    assert "it was the— season" in join_lines(DASHED * 3, rules=1)
    spaced = "An old tale told at length, as such tales are, by a man in a blue coat ------\n"
    assert "coat ------ and" in join_lines(spaced + "and so on.", "join")  # not attached


def test_a_break_inside_a_run_of_marks_is_kept_even_by_join():
    """Joined, `. .⏎.` would make one token of a spaced run (`. . .`) where the counting pass
    saw two; so under rules 2 such a break stays, `--lines join` included."""
    text = "He stopped and thought . .\n. and went on as before, slowly, step by step.\n"
    assert join_lines(text, "join") == text
    assert join_lines(text, "join", rules=1) == text.replace("\n", " ", 1)
    stats = LineStats()
    stats.add(text)
    assert stats.joined(stats.layout(), "join") == 0
    assert NEWLINE in tokenize(text, JOIN)
