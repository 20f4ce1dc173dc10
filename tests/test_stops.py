"""Stop conditions on the printed text: where they cut, and that they hold back only what could
still become a match."""

import numpy as np
import pytest

from rnngen.errors import ConfigError
from rnngen.reading.stops import PARAGRAPH, SENTENCE, Stop, StopMatcher, parse_stop


def run(pieces, *stops):
    """(the text given back, the matched stop, what each push gave back)."""
    matcher = StopMatcher([parse_stop(s) for s in stops])
    out = []
    for piece in pieces:
        out.append(matcher.push(piece))
        if matcher.matched:
            break
    else:
        out.append(matcher.finish())
    return "".join(out), matcher.matched, out


def words(text):
    """Pieces as the detokenizer gives them: each token with the space before it."""
    import re

    return re.findall(r"\s*[^\s]+|\s+", text)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("He ran. Then he sat.", "He ran."),
        ("“Who?” said he. “Me!” And so", "“Who?” said he."),
        ("Mr. Darcy came in. He sat", "Mr. Darcy came in."),
        ("It cost 3.5 pence. Yes", "It cost 3.5 pence."),
        ("“Stop.”\n\nHe went", "“Stop.”"),
        ("Well... I think so. No", "Well..."),
        ("no end at all", "no end at all"),
    ],
)
def test_sentence(text, expected):
    got, matched, _ = run(words(text), SENTENCE)
    assert got == expected
    assert (matched == Stop(SENTENCE)) == (expected != text)


def test_a_sentence_end_at_the_very_end_is_confirmed_by_finish():
    got, matched, out = run(words("It ended."), SENTENCE)
    assert got == "It ended." and matched == Stop(SENTENCE)
    assert out[-1] == "."  # held until the end showed nothing followed


def test_paragraph_needs_text_before_the_break():
    got, matched, _ = run(["\n\n", "First", " words", ".", "\n\n", "Next"], PARAGRAPH)
    assert got == "\n\nFirst words.\n\n" and matched == Stop(PARAGRAPH)
    got, _, _ = run(["One", "\n", "\n", "Two"], PARAGRAPH)  # the break split over two pieces
    assert got == "One\n\n"


def test_text_stops_cut_inside_a_piece_and_escapes():
    got, matched, _ = run([" and", " then", " she", " said"], "en s")
    assert got == " and then s" and matched == Stop("text", "en s")
    assert parse_stop(r"a\nb\\c\t") == Stop("text", "a\nb\\c\t")
    got, _, _ = run(["x", "\n", "y"], r"\n")
    assert got == "x\n"
    with pytest.raises(ConfigError, match="--stop"):
        parse_stop("")


def test_only_possible_starts_are_held():
    _, _, out = run([" The", " cat", " sa", "t", " down"], "sat.")
    assert out[:2] == [" The", " cat"]  # nothing like the stop: given back at once
    assert out[2:4] == [" ", ""]  # "sa", then "sat": could begin "sat."
    assert out[4] == "sat down"  # not the stop after all
    _, _, out = run([" He", " said", ".", " Then"], SENTENCE)
    assert out == [" He", " said", "", "."]  # the "." waits for what follows, which confirms it


def test_the_first_ending_match_wins():
    got, matched, _ = run(words("He sat down. Then they left"), "they", SENTENCE)
    assert got == "He sat down." and matched == Stop(SENTENCE)
    got, matched, _ = run(words("He sat down. Then they left"), "sat", SENTENCE)
    assert got == "He sat" and matched == Stop("text", "sat")
    # the tab completes its stop, but the pending "." could end a sentence first: wait for it
    got, matched, _ = run(["Yes", ".", "\t", "No"], "\\t", SENTENCE)
    assert got == "Yes." and matched == Stop(SENTENCE)


TEXT = (
    "“Oh, Mr. Smith!” she cried, “it is 3.5 miles.”\n\nHe said nothing... and then? “Go.” "
    "Later, at 6:30, they sat down; then they went home.\n\nThe end"
)


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("stop", [SENTENCE, PARAGRAPH, "sat", "”\\n", "home.\\n\\nThe"])
def test_any_split_of_the_text_gives_the_same_output(seed, stop):
    whole, matched, _ = run([TEXT], stop)
    rng = np.random.default_rng(seed)
    cuts = sorted(rng.choice(np.arange(1, len(TEXT)), 12, replace=False).tolist())
    pieces = [TEXT[a:b] for a, b in zip([0, *cuts], [*cuts, len(TEXT)], strict=True)]
    got, got_matched, _ = run(pieces, stop)
    assert got == whole and got_matched == matched
    assert matched is not None and TEXT.startswith(whole)
