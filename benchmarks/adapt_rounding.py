"""How much float32 rounding alone moves dynamic evaluation's perplexity on War and Peace.

Scores a text (the test part, or Alice in Wonderland) with the tuned dynamic settings of
results/adapt.md four ways: `plain32`, every weight stepped densely in float32 (the update before
the row-lazy embedding); `lazy32`, the update as rnngen does it (the embedding's unread rows decay
when next read); `nudge-plain32`, plain32 with the output weights moved by one float32 ulp; and
`lazy64`, the same maths in float64 (the reference). Models and statistics as adapt.py's.

    nice -n 5 python benchmarks/adapt_rounding.py --dir DIR --model rnn --text alice
"""

import argparse
import math
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CORPORA = REPO.parent / "shared" / "corpora"
TUNED = {"lstm": (0.001, 0.0003, 50), "rnn": (0.0003, 0.001, 50)}  # results/adapt.md


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--dir", type=Path, required=True, help="folder of adapt_models.py's models")
    p.add_argument("--model", default="rnn", choices=sorted(TUNED))
    p.add_argument("--text", default="alice", choices=["alice", "test"])
    p.add_argument("--modes", default="plain32,lazy32,nudge-plain32,lazy64")
    args = p.parse_args(argv)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    sys.path.insert(0, str(REPO))
    sys.path.insert(0, str(HERE))
    import numpy as np
    from adapt_models import split_corpus

    from rnngen.api import device_params
    from rnngen.core.model import join_output
    from rnngen.files.storage import load_model
    from rnngen.reading import adapt
    from rnngen.reading.reader import Reader
    from rnngen.text.corpus import read_text
    from rnngen.text.tokenize import tokenize
    from rnngen.training.stats import gradient_stats

    vocab, tok_cfg, ids = split_corpus(CORPORA / "war_and_peace.txt")
    if args.text == "alice":
        text = vocab.encode(tokenize(read_text(str(CORPORA / "alice_in_wonderland.txt")), tok_cfg))
    else:
        text = ids["test"]
    model = load_model(args.dir / f"wp_{args.model}.npz")
    params, cfg = device_params(model), model.config
    if model.stats is not None:
        stats = join_output(dict(model.stats))
    else:
        stats = gradient_stats(params, cfg, ids["train"])
    settings = adapt.DynamicSettings(*TUNED[args.model])
    for mode in args.modes.split(","):
        dtype = np.float64 if mode.endswith("64") else np.float32
        p64 = {k: v.astype(dtype) for k, v in params.items()}
        s64 = {k: v.astype(dtype) for k, v in stats.items()}
        if mode.startswith("nudge"):
            p64["out.Wb"] = np.nextafter(p64["out.Wb"], np.inf)
        weights = adapt.DynamicWeights(p64, cfg, s64, settings)
        if mode.startswith("plain"):  # dense embedding gradient, every row stepped every segment
            weights.lazy = weights.sparse = False
        nll = Reader(p64, cfg, weights=weights).read(text)
        ppl = math.exp(float(np.mean(nll)))
        print(f"{args.model} {args.text} {mode}: ppl {ppl:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
