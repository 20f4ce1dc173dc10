"""How text reads: line breaks as tokens, punctuation spacing, samples, bits per character.

    python benchmarks/text_quality.py [--corpora DIR]
        [--sections newlines,round_trip,samples,bpc,loops] [--model-dir DIR] [--wp-chars N]
        [--wp-epochs N | --wp-time LIMIT] [--samples N]
        [--sample-length N] [--loop-books A,B,C] [--loop-time LIMIT] [--dry-multipliers M,M]
        [--dry-allowed-length N] [--out FILE]

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
- `samples`: `--samples` samples (default 10) of `--sample-length` tokens (default 500) from a War
  and Peace model, under default sampler settings and under `--top-p 0.9 --repeat-penalty 1.1`:
  the repeated-4-gram rate and distinct-2, means over the samples, beside the same figures for
  as many stretches of the book's own test part. Both are counted on the generated tokens (the
  start word left out), punctuation and paragraph breaks being tokens too:
  - repeated-4-gram rate: of the n - 3 4-grams of a sample of n tokens (every position, the
    4-grams overlapping), the share equal to a 4-gram that began at an earlier position of the
    same sample. 0 for text that never repeats itself; a loop of k tokens drives it towards 1.
  - distinct-2: distinct bigrams over bigrams (n - 1) in a sample. 1 when no bigram repeats.
- `loops`: whether sampling falls into loops, on `--loop-books` (default Treasure Island,
  Huckleberry Finn and Emma from `--corpora`), each with a model trained on the whole book by
  `python -m rnngen train BOOK --time LIMIT` (`--loop-time`, default 2m; kept in `--model-dir` as
  `loops-BOOK-LIMIT.npz` and reused): the repeated-4-gram rate and distinct-2 (as in `samples`)
  of `--samples` samples of `--sample-length` tokens under the default chain (temperature 1),
  `--greedy`, temperature 0.3 and 0.5, each without DRY and with it at each multiplier of
  `--dry-multipliers` (the other DRY settings at `rnngen sample`'s defaults, or
  `--dry-allowed-length`), and at the last multiplier with each sequence breaker of
  `--dry-breaker-rows` alone, beside the same figures for as many stretches of the book
  itself, taken at even spacing through it.
- `bpc`: held-out bits per character and per token, and perplexity, of the War and Peace model
  on the book's test part (`rnngen eval --json`'s figures: `api.evaluate_text`), and the same
  for a model trained with `--lines keep` on the same text and budget. Perplexities of the two
  count different tokens (`keep` predicts every printed line break), bits per character count the
  same characters, so they compare the tokenizers fairly.

The War and Peace models: the book's text (its first `--wp-chars` characters if given) is cut at
the paragraph breaks nearest 90% and 95% of its length into train, validation and test parts (the
quality benchmark's 90/5/5, by characters and at paragraph breaks so that each part is text), and
`rnngen train TRAIN --valid VALID --epochs E` (`--wp-epochs`, default 1; or `--time LIMIT`
with `--wp-time LIMIT`: on a shared machine the two models then get unequal steps) runs at its
defaults otherwise (`--lines auto`, or
`keep`). Model files and parts are kept in `--model-dir` under names that carry the settings, and
reused when present, so a rerun only samples and scores.

Progress goes to stderr, the markdown report to stdout (and to `--out`).
"""

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rnngen import api  # noqa: E402
from rnngen.reading.generate import generate  # noqa: E402
from rnngen.reading.sampling import DEFAULT, SamplerSettings, bind  # noqa: E402
from rnngen.reading.stops import unescape  # noqa: E402
from rnngen.text.corpus import default_corpus_path, encode_text, round_trip  # noqa: E402
from rnngen.text.tokenize import (  # noqa: E402
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


# --- a War and Peace model: samples and bits per character ------------------------------------

SAMPLERS = [
    ("default settings", "", SamplerSettings()),
    ("`--top-p 0.9 --repeat-penalty 1.1`", "", SamplerSettings(top_p=0.9, repeat_penalty=1.1)),
]


def repeated_4gram_rate(tokens: list) -> float:
    """Share of a sequence's 4-grams (every position) equal to one that began earlier in it."""
    seen, repeated, total = set(), 0, 0
    for i in range(len(tokens) - 3):
        gram = tuple(tokens[i : i + 4])
        repeated += gram in seen
        total += 1
        seen.add(gram)
    return repeated / total if total else 0.0


def distinct_2(tokens: list) -> float:
    """Distinct bigrams over bigrams."""
    grams = list(zip(tokens, tokens[1:], strict=False))
    return len(set(grams)) / len(grams) if grams else 0.0


def war_and_peace_parts(args) -> dict:
    """Train, validation and test files of War and Peace in --model-dir, cut at the paragraph
    breaks nearest 90% and 95% of the (capped) text; written once, then reused."""
    folder = args.model_dir / f"war_and_peace-{args.wp_chars or 'all'}"
    names = {part: folder / f"{part}.txt" for part in ("train", "valid", "test")}
    if not all(path.exists() for path in names.values()):
        text = read(args.corpora / "war_and_peace.txt")
        if args.wp_chars:
            text = text[: args.wp_chars]
        a = text.rfind("\n\n", 0, int(len(text) * 0.90)) + 2
        b = text.rfind("\n\n", 0, int(len(text) * 0.95)) + 2
        folder.mkdir(parents=True, exist_ok=True)
        for part, piece in (("train", text[:a]), ("valid", text[a:b]), ("test", text[b:])):
            names[part].write_text(piece, encoding="utf-8")
    return names


def war_and_peace_model(args, lines: str) -> Path:
    """The War and Peace model trained with `--lines LINES`, `rnngen train`'s defaults otherwise
    and --wp-epochs epochs; trained with the CLI unless its file is already in --model-dir."""
    parts = war_and_peace_parts(args)
    budget = ["--time", args.wp_time] if args.wp_time else ["--epochs", str(args.wp_epochs)]
    path = parts["train"].parent / f"model-{lines}-{budget[0][2:]}{budget[1]}.npz"
    if path.exists():
        progress(f"reusing {path}")
        return path
    command = [
        sys.executable, "-m", "rnngen", "train", str(parts["train"]), "--valid",
        str(parts["valid"]), *budget, "--lines", lines, "-o", str(path),
    ]  # fmt: skip
    progress(f"training ({lines}): {' '.join(command[2:])}")
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    )
    began = time.perf_counter()
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
    progress(f"trained in {time.perf_counter() - began:.0f}s")
    return path


def _model_line(args, model) -> str:
    val = (model.history or {}).get("best_val_ppl", float("nan"))
    part = f"the first {args.wp_chars:,} characters of" if args.wp_chars else "the whole of"
    return (
        f"Model: `rnngen train` defaults ({model.config.cell} {model.config.layers}x"
        f"{model.config.hidden}, embed {model.config.embed}, vocabulary {len(model.vocab):,}, "
        f"{model.config.softmax} softmax) on {part} War and Peace (train part), "
        f"`{_budget(args)}`; validation perplexity {val:.1f}."
    )


def _budget(args) -> str:
    return f"--time {args.wp_time}" if args.wp_time else f"--epochs {args.wp_epochs}"


def samples(args) -> str:
    model = api.load_model(war_and_peace_model(args, "auto"))
    n, length = args.samples, args.sample_length
    rows = [
        "## Samples from a War and Peace model",
        "",
        _model_line(args, model),
        "",
        f"{n} samples of {length} tokens each (`rnngen sample --length {length} --seed S`, S = 0 "
        f"to {n - 1}, start word drawn by frequency), means over the samples (lowest and highest "
        "in brackets). Repeated-4-gram rate: of a sample's 4-grams of tokens, the share that "
        "already began at an earlier position of the same sample. Distinct-2: distinct bigrams "
        "over bigrams. Punctuation and paragraph breaks are tokens. The book's row: the same "
        f"figures over {n} stretches of {length} tokens of its test part.",
        "",
        "| text | repeated 4-grams | distinct-2 |",
        "|---|---:|---:|",
    ]
    shown = []
    for name, _, settings in SAMPLERS:
        progress(f"samples: {name}")
        reps, dist, text = loop_rates(model, settings, n, length)
        shown.append((name, text))
        rows.append(_stat_row(f"samples, {name}", reps, dist))
    test = tokenize(read(war_and_peace_parts(args)["test"]), model.tokenizer)
    stretches = [test[i * length : (i + 1) * length] for i in range(n)]
    stretches = [s for s in stretches if len(s) == length]
    if stretches:
        rows.append(
            _stat_row(
                f"the book (test part, {len(stretches)} stretches)",
                [repeated_4gram_rate(s) for s in stretches],
                [distinct_2(s) for s in stretches],
            )
        )
    for name, text in shown:
        rows += ["", f"The first 600 characters of seed 0's sample, {name}:", ""]
        rows += ["> " + line if line else ">" for line in text[:600].split("\n")]
    return "\n".join(rows)


def _stat_row(name: str, reps: list, dist: list) -> str:
    return (
        f"| {name} | {np.mean(reps):.2%} ({min(reps):.1%}-{max(reps):.1%}) "
        f"| {np.mean(dist):.3f} ({min(dist):.3f}-{max(dist):.3f}) |"
    )


def bits_per_character(args) -> str:
    test = read(war_and_peace_parts(args)["test"])
    rows = [
        "## Held-out bits per character",
        "",
        "War and Peace's test part scored by `rnngen eval --json` (one stream), for the model "
        "above and one trained the same way with `--lines keep`. Tokens and perplexity count "
        "different things under the two tokenizers (`keep` predicts the printer's line breaks, "
        "which are easy tokens and lower its perplexity), bits per character are over the same "
        "characters of the same text.",
        "",
        "| `--lines` | vocabulary | validation perplexity | test tokens | test perplexity "
        "| bits per token | characters | bits per character |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for lines in ("auto", "keep"):
        model = api.load_model(war_and_peace_model(args, lines))
        progress(f"bits per character: {lines}")
        report = api.evaluate_text(model, test).to_dict()
        val = (model.history or {}).get("best_val_ppl", float("nan"))
        rows.append(
            f"| {lines} | {len(model.vocab):,} | {val:.1f} | {report['tokens']:,} "
            f"| {report['perplexity']:.1f} | {report['bits_per_token']:.3f} "
            f"| {report['characters']:,} | {report['bits_per_character']:.4f} |"
        )
    return "\n".join(rows)


# --- loops: greedy and low temperatures, with and without DRY -------------------------------

LOOP_SAMPLERS = [
    ("default (temperature 1)", SamplerSettings()),
    ("`--greedy`", SamplerSettings(temperature=0.0)),
    ("`--temperature 0.3`", SamplerSettings(temperature=0.3)),
    ("`--temperature 0.5`", SamplerSettings(temperature=0.5)),
]


def loop_model(args, book: Path) -> Path:
    """The model of `book` trained with `rnngen train BOOK --time --loop-time`, reused if there."""
    path = args.model_dir / f"loops-{book.stem}-{args.loop_time}.npz"
    if path.exists():
        progress(f"reusing {path}")
        return path
    args.model_dir.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "rnngen", "train", str(book), "--time", args.loop_time]
    command += ["-o", str(path), "-q"]
    progress(f"training: {' '.join(command[2:])}")
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    )
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
    return path


def loop_rates(model, settings, n: int, length: int) -> tuple:
    """(repeated-4-gram rates, distinct-2s, seed 0's text) of n samples of `length` tokens,
    seeds 0 to n-1, the start word drawn by frequency."""
    params = api.device_params(model)
    settings = bind(settings, model.vocab)
    reps, dist, first = [], [], ""
    for seed in range(n):
        rng = np.random.default_rng(seed)
        prompt = api.prompt_ids(model, None, rng)
        ids = list(generate(params, model.config, prompt, length, rng, settings))
        tokens = model.vocab.decode(ids)
        reps.append(repeated_4gram_rate(tokens))
        dist.append(distinct_2(tokens))
        if seed == 0:
            first = api.detokenize(model.vocab.decode(prompt + ids), model.tokenizer)
    return reps, dist, first


def book_rates(text: str, model, n: int, length: int) -> tuple:
    """The same figures for n stretches of `length` tokens spaced evenly through the book."""
    tokens = tokenize(text, model.tokenizer)
    step = max((len(tokens) - length) // max(n - 1, 1), 1)
    stretches = [tokens[i * step : i * step + length] for i in range(n)]
    stretches = [t for t in stretches if len(t) == length]
    return [repeated_4gram_rate(t) for t in stretches], [distinct_2(t) for t in stretches]


def loops(args) -> str:
    n, length = args.samples, args.sample_length
    multipliers = [float(m) for m in args.dry_multipliers.split(",") if m]
    dry = {"dry_allowed_length": args.dry_allowed_length} if args.dry_allowed_length else {}
    rows = [
        "## Loops: greedy and low temperatures, with and without DRY",
        "",
        f"{n} samples of {length} tokens per row (seeds 0 to {n - 1}, start word drawn by "
        "frequency), means over the samples (lowest and highest in brackets); repeated-4-gram "
        "rate and distinct-2 as in the samples section. Each model: `python -m rnngen train BOOK "
        f"--time {args.loop_time}` on the whole book, defaults otherwise. DRY at "
        f"`rnngen sample`'s settings (base {DEFAULT.dry_base}, allowed length "
        f"{dry.get('dry_allowed_length', DEFAULT.dry_allowed_length)}, last "
        f"{DEFAULT.dry_last_n} tokens, breakers {list(DEFAULT.dry_sequence_breakers)}) and the "
        "multiplier shown (and a sequence breaker where shown). The book's row: as many "
        "stretches of the book, evenly spaced.",
    ]
    for name in args.loop_books.split(","):
        book = args.corpora / f"{name}.txt"
        model = api.load_model(loop_model(args, book))
        val = (model.history or {}).get("best_val_ppl", float("nan"))
        rows += [
            "",
            f"### {name} (vocabulary {len(model.vocab):,}, validation perplexity {val:.1f})",
            "",
            "| sampler | DRY multiplier | repeated 4-grams | distinct-2 |",
            "|---|---:|---:|---:|",
        ]
        rows.append(_loop_row("the book itself", "", *book_rates(read(book), model, n, length)))
        for label, settings in LOOP_SAMPLERS:
            tries = [(m or "off", replace(settings, dry_multiplier=m, **dry))
                     for m in [0.0, *multipliers]]  # fmt: skip
            for breaker in args.dry_breaker_rows.split(",") if args.dry_breaker_rows else ():
                token = unescape(breaker)
                tries.append((f"{multipliers[-1]}, breaker `{breaker}`", replace(
                    settings, dry_multiplier=multipliers[-1], dry_sequence_breakers=(token,), **dry
                )))  # fmt: skip
            for shown, tried in tries:
                progress(f"loops: {name}, {label}, DRY {shown}")
                rows.append(_loop_row(label, shown, *loop_rates(model, tried, n, length)[:2]))
    return "\n".join(rows)


def _loop_row(name, multiplier, reps, dist) -> str:
    return _stat_row(name, reps, dist).replace(f"| {name} |", f"| {name} | {multiplier} |", 1)


SECTIONS = {
    "newlines": newlines,
    "round_trip": round_trips,
    "samples": samples,
    "bpc": bits_per_character,
    "loops": loops,
}


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
    parser.add_argument(
        "--model-dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "rnngen-text-quality",
        help="where the War and Peace parts and models are kept and reused",
    )
    parser.add_argument("--wp-chars", type=int, default=0, help="War and Peace's first N chars")
    parser.add_argument("--wp-epochs", type=int, default=1, help="epochs of the W&P models")
    parser.add_argument(
        "--wp-time", help="train the W&P models with `--time LIMIT` (90s, 10m) instead of epochs"
    )
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--sample-length", type=int, default=500)
    parser.add_argument("--loop-books", default="treasure_island,huckleberry_finn,emma")
    parser.add_argument("--loop-time", default="2m", help="training budget of each loops model")
    parser.add_argument("--dry-multipliers", default=str(DEFAULT.dry_multiplier))
    parser.add_argument("--dry-allowed-length", type=int, default=0, help="0: the default")
    parser.add_argument(
        "--dry-breaker-rows", default="\\n\\n",
        help="sequence breakers each tried alone at the last multiplier (\\n\\n: paragraph)",
    )  # fmt: skip
    args = parser.parse_args()
    names = [s for s in args.sections.split(",") if s]
    unknown = [s for s in names if s not in SECTIONS]
    if unknown:
        parser.error(f"unknown sections {unknown}; choose from {', '.join(SECTIONS)}")
    start = time.perf_counter()
    parts = [
        "# Text quality",
        "",
        f"rnngen commit {commit()}; `python benchmarks/text_quality.py {shlex.join(sys.argv[1:])}`"
        f" (sections {', '.join(names)}). Figures are counts and model scores, not timings (the "
        "machine was shared, which changes nothing here).",
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
