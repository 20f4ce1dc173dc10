"""Time and peak memory of encoding 1x, 10x and 100x copies of War and Peace.

    python benchmarks/encode_scale.py [--copies 1,10,100] [--corpus PATH]

Each encoding runs in a fresh subprocess (`rnngen.corpus.encode_file` then
`rnngen.storage.save_corpus`, what `rnngen encode` does), so its peak resident memory
(VmHWM) is its own. The input files are written to a temporary folder and removed afterwards.
Prints a markdown table: copies, input size, tokens, seconds, MB/s, peak memory, and peak memory
per input byte; the point is that memory follows the ids (4 bytes a token), not the text.
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = ROOT.parent / "shared" / "corpora" / "war_and_peace.txt"

CHILD = """
import json, sys, time
from rnngen.text.corpus import encode_file
from rnngen.files.storage import save_corpus
from rnngen.text.tokenize import TokenizerConfig
start = time.perf_counter()
corpus = encode_file(sys.argv[1], TokenizerConfig(), max_vocab=10000)
save_corpus(sys.argv[2], corpus)
seconds = time.perf_counter() - start
peak = next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(json.dumps({"tokens": int(len(corpus.ids)), "seconds": seconds, "peak": peak}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", default="1,10,100")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    args = parser.parse_args()
    text = args.corpus.read_bytes()
    baseline = subprocess.run(
        [sys.executable, "-c", "import rnngen.corpus, rnngen.storage;"
         "print(next(int(l.split()[1]) * 1024 for l in open('/proc/self/status')"
         " if l.startswith('VmHWM:')))"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    base_peak = int(baseline.stdout)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for copies in (int(c) for c in args.copies.split(",")):
            src = Path(tmp) / f"x{copies}.txt"
            with open(src, "wb") as f:
                for _ in range(copies):
                    f.write(text)
            out = Path(tmp) / f"x{copies}.npz"
            print(f"encoding {copies}x ({src.stat().st_size / 1e6:.0f} MB)...", file=sys.stderr)
            run = subprocess.run(
                [sys.executable, "-c", CHILD, str(src), str(out)],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            result = json.loads(run.stdout)
            size = src.stat().st_size
            rows.append((copies, size, result, out.stat().st_size))
            src.unlink()
            out.unlink()
    print(
        "| copies | input MB | tokens | seconds | input MB/s | peak RSS MB | peak above import MB |"
        " ids MB | output MB |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for copies, size, r, out_size in rows:
        print(
            f"| {copies} | {size / 1e6:.1f} | {r['tokens']:,} | {r['seconds']:.1f} | "
            f"{size / 1e6 / r['seconds']:.1f} | {r['peak'] / 1e6:.0f} | "
            f"{(r['peak'] - base_peak) / 1e6:.0f} | {4 * r['tokens'] / 1e6:.0f} | "
            f"{out_size / 1e6:.0f} |"
        )
    print(f"\n(peak RSS of a process that only imports rnngen: {base_peak / 1e6:.0f} MB)")


if __name__ == "__main__":
    main()
