"""Round trip of word-level book tokenizing, line for line, on every book of a folder.

    python benchmarks/round_trip.py [--corpora DIR] [--rules 1,2] [--straighten none,double,...]
        [--examples N]

For every `*.txt` in `--corpora` (default `../shared/corpora` beside the repository), the lines
that come back identical from `detokenize(tokenize(text))` under the settings `encode` learns
from the book (`rnngen.corpus.round_trip`: lines compared with the text as the tokenizer reads it,
line ends made LF, the printer's wraps joined, runs of white space made one space, no spaces at
the ends of lines). Prints a markdown table per tokenizer rules version asked for (`--rules`;
`TokenizerConfig.rules`: 1 is how files made before that setting tokenize), with the lines, the
identical ones and their share, and with `--examples N` the first N lines of each book that
differ (expected, then got). `--straighten` also measures the books with their curly quotes made
straight, as many texts print them (none of these books prints straight double quotes): `double`
(“ ” become "), `single` (‘ ’ become ', apostrophes too) or `both`; a book the change leaves as
it is shows `-`.
"""

import argparse
from pathlib import Path

from rnngen.text.corpus import encode_text, round_trip
from rnngen.text.tokenize import TokenizerConfig, detokenize, normalized_text, tokenize

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CORPORA = ROOT.parent / "shared" / "corpora"


STRAIGHTEN = {
    "none": {},
    "double": {"“": '"', "”": '"'},
    "single": {"‘": "'", "’": "'"},
    "both": {"“": '"', "”": '"', "‘": "'", "’": "'"},
}


def straightened(path: Path, how: str) -> str | None:
    """The book's text with its curly quotes made straight, or None if that changes nothing."""
    text = path.read_text(encoding="utf-8")
    changed = text.translate(str.maketrans(STRAIGHTEN[how]))
    return changed if how == "none" or changed != text else None


def table(books: list, rules: int, how: str) -> str:
    quotes = "" if how == "none" else f", curly quotes made straight ({how})"
    rows = [
        f"Tokenizer rules {rules}{quotes}.",
        "",
        "| book | lines | identical | identical % |",
        "|---|---:|---:|---:|",
    ]
    for path in books:
        text = straightened(path, how)
        if text is None:
            rows.append(f"| {path.stem} | - | - | - |")
            continue
        result = round_trip(text, TokenizerConfig(rules=rules))
        rows.append(
            f"| {path.stem} | {result.lines:,} | {result.identical:,} | {100 * result.exact:.2f} |"
        )
    return "\n".join(rows)


def differing(path: Path, rules: int, how: str, n: int) -> str:
    """The first n lines of a book that do not come back identical, as a markdown list."""
    text = straightened(path, how)
    if text is None:
        return ""
    config = encode_text(text, TokenizerConfig(rules=rules)).tokenizer
    expected = normalized_text(text, config).split("\n")
    got = detokenize(tokenize(text, config), config).split("\n")
    pairs = [(a, b) for a, b in zip(expected, got, strict=False) if a and a != b][:n]
    lines = [f"{path.stem}, rules {rules}, straightened {how}:", ""]
    for a, b in pairs:
        lines += [f"- expected `{a}`", f"  got `{b}`"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpora", type=Path, default=DEFAULT_CORPORA)
    parser.add_argument("--rules", default="2", help="comma-separated rules versions, e.g. 1,2")
    parser.add_argument(
        "--straighten", default="none", help="comma-separated: " + ",".join(STRAIGHTEN)
    )
    parser.add_argument("--examples", type=int, default=0)
    args = parser.parse_args()
    books = sorted(args.corpora.glob("*.txt"))
    if not books:
        parser.error(f"no .txt files in {args.corpora}")
    ways = args.straighten.split(",")
    if not set(ways) <= set(STRAIGHTEN):
        parser.error(f"--straighten takes {', '.join(STRAIGHTEN)}")
    for how in ways:
        for rules in (int(r) for r in args.rules.split(",")):
            print(table(books, rules, how), end="\n\n")
            for path in books if args.examples else ():
                print(differing(path, rules, how, args.examples), end="\n\n")


if __name__ == "__main__":
    main()
