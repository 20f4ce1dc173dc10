"""How generated and round-tripped text reads: line breaks kept as tokens, and punctuation spacing.

    python benchmarks/text_quality.py [--corpora DIR] [--sections newlines,round_trip] [--out FILE]

Sections (each a function taking the parsed arguments and returning markdown; add more to
SECTIONS):
- `newlines`: for the bundled corpus (Peter Pan) and War and Peace, the share of `\\n` tokens (line
  breaks inside a paragraph) among all tokens under `--lines keep` and `--lines auto`, and how
  many breaks `auto` joins.
- `round_trip`: for every book in `--corpora` (default `../shared/corpora` beside the repository),
  the share of lines that come back identical from `detokenize(tokenize(text))`, whole books, under
  the tokenizer settings `encode` learns from the book (`rnngen.corpus.round_trip`: lines compared
  with the text as the tokenizer reads it, line ends made LF, the printer's wraps joined, runs of
  white space made one space, no spaces at the ends of lines), and the first few lines that differ.

Progress goes to stderr, the markdown report to stdout (and to `--out`).
"""

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rnngen.corpus import default_corpus_path, encode_text, round_trip  # noqa: E402
from rnngen.tokenize import (  # noqa: E402
    NEWLINE,
    TokenizerConfig,
    detokenize,
    normalized_text,
    tokenize,  # noqa: E402
)

DEFAULT_CORPORA = ROOT.parent / "shared" / "corpora"


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def newlines(args) -> str:
    books = [("Peter Pan (bundled)", default_corpus_path())]
    war_and_peace = args.corpora / "war_and_peace.txt"
    if war_and_peace.exists():
        books.append(("War and Peace", war_and_peace))
    rows = [
        "## Line breaks as tokens",
        "",
        "`\\n` tokens (line breaks inside a paragraph) as a share of all tokens, word-level book "
        "tokenizing.",
        "",
        "| book | tokens (keep) | `\\n` (keep) | share (keep) | tokens (auto) | `\\n` (auto) "
        "| share (auto) | breaks joined |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, path in books:
        progress(f"newlines: {name}")
        text = read(path)
        keep = tokenize(text, TokenizerConfig(lines="keep"))
        auto = tokenize(text, TokenizerConfig(lines="auto"))
        k, a = keep.count(NEWLINE), auto.count(NEWLINE)
        rows.append(
            f"| {name} | {len(keep):,} | {k:,} | {k / len(keep):.2%} | {len(auto):,} | {a:,} "
            f"| {a / len(auto):.2%} | {k - a:,} of {k:,} |"
        )
    return "\n".join(rows)


def round_trips(args) -> str:
    rows = [
        "## Round trip, line for line",
        "",
        "Lines (not empty) of the normalised text that `detokenize(tokenize(text))` gives back "
        "unchanged, whole books, `--lines auto`, punctuation spacing learned from the book. "
        "Target: at least 99.5% on every book. With joined lines a line is a whole paragraph, so "
        "one difference spoils more text; the last columns are the same measure with "
        "`--lines keep` (the printed lines) and with the built-in spacing rules alone (no "
        "spacing learned: how files made before it detokenise).",
        "",
        "| book | lines | identical | exact | meets 99.5% | exact, keep | exact, built-in rules |",
        "|---|---:|---:|---:|---|---:|---:|",
    ]
    examples = []
    for path in sorted(args.corpora.glob("*.txt")):
        progress(f"round trip: {path.name}")
        text = read(path)
        result = round_trip(text)
        keep = round_trip(text, TokenizerConfig(lines="keep"))
        builtin = round_trip(text, TokenizerConfig(attach=(), elisions=(), pairs=()))
        mark = "yes" if result.exact >= 0.995 else "**no**"
        rows.append(
            f"| {path.name} | {result.lines:,} | {result.identical:,} | {result.exact:.2%} "
            f"| {mark} | {keep.exact:.2%} | {builtin.exact:.2%} |"
        )
        examples += [f"- {path.name}: {d}" for d in _differences(text, args.examples)]
    if examples:
        rows += ["", f"The first {args.examples} differing lines of each book (expected, got):", ""]
        rows += examples
    return "\n".join(rows)


def _differences(text: str, n: int) -> list:
    """The first n differing lines, each cut to the 70 characters around the first difference."""
    config = encode_text(text, TokenizerConfig()).tokenizer
    expected = normalized_text(text, config).split("\n")
    got = detokenize(tokenize(text, config), config).split("\n")
    shown = []
    for a, b in zip(expected, got, strict=False):
        if a and a != b and len(shown) < n:
            i = next((j for j, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), 0)
            shown.append(f"`{a[max(0, i - 35) : i + 35]}` / `{b[max(0, i - 35) : i + 35]}`")
    return shown


SECTIONS = {"newlines": newlines, "round_trip": round_trips}


def commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpora", type=Path, default=DEFAULT_CORPORA)
    parser.add_argument("--sections", default=",".join(SECTIONS))
    parser.add_argument("--examples", type=int, default=3, help="differing lines shown per book")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    names = [s for s in args.sections.split(",") if s]
    unknown = [s for s in names if s not in SECTIONS]
    if unknown:
        parser.error(f"unknown sections {unknown}; choose from {', '.join(SECTIONS)}")
    start = time.perf_counter()
    parts = [
        "# Text quality",
        "",
        f"rnngen commit {commit()}; `python benchmarks/text_quality.py "
        f"--sections {','.join(names)}`. Figures are counts, not timings (the machine was "
        "shared, which changes nothing here).",
    ]
    for name in names:
        parts += ["", SECTIONS[name](args)]
    report = "\n".join(parts) + "\n"
    print(report, end="")
    if args.out:
        args.out.write_text(report, encoding="utf-8")
    progress(f"done in {time.perf_counter() - start:.0f}s")


if __name__ == "__main__":
    main()
