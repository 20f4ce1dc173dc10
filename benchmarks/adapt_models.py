"""Train (once) the War and Peace models that benchmarks/adapt.py adapts.

The data are quality.py's: rnngen's default word tokenizer, the tokens split contiguously 90/5/5
into train/validation/test, the vocabulary the 10,000 most frequent train words plus <unk>. The
networks are quality.py's `lstm` (2x200) and `rnn` (1x256), batch 20, seq_len 20, trained with
rnngen's defaults (optimiser, learning rate, dropout, state resets, output bias) for --epochs
epochs (`--dropout 0` gives quality.py's models).
Each model is saved as DIR/wp_<name>.npz with the dynamic-evaluation gradient statistics, as
`rnngen train` stores them, and is not retrained when the file exists.

    nice -n 5 python benchmarks/adapt_models.py --dir /tmp/adapt-models --epochs 2
"""

import argparse
import math
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpora" / "war_and_peace.txt"
CONFIGS = {
    "lstm": {"cell": "lstm", "layers": 2, "hidden": 200, "embed": 200},
    "rnn": {"cell": "rnn", "layers": 1, "hidden": 256, "embed": 256},
}
BATCH, SEQ_LEN = 20, 20


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def split_corpus(corpus: Path, max_vocab: int = 10000):
    """(vocab, tokenizer config, {"train", "valid", "test"} -> ids), as quality.py splits."""
    from rnngen.text.corpus import read_text
    from rnngen.text.tokenize import TokenizerConfig, tokenize
    from rnngen.text.vocab import build_vocab

    tok_cfg = TokenizerConfig()
    tokens = tokenize(read_text(str(corpus)), tok_cfg)
    n = len(tokens)
    a, b = int(n * 0.90), int(n * 0.95)
    parts = {"train": tokens[:a], "valid": tokens[a:b], "test": tokens[b:]}
    vocab = build_vocab(parts["train"], tok_cfg.specials, max_size=max_vocab)
    return vocab, tok_cfg, {k: vocab.encode(v) for k, v in parts.items()}


def train_models(
    folder: Path, names, epochs: int, corpus: Path = DEFAULT_CORPUS, dropout: float | None = None
) -> dict:
    """name -> path of the trained model file, training those not yet in `folder`."""
    from rnngen.core.model import ModelConfig
    from rnngen.files.storage import TrainedModel, save_model
    from rnngen.training.train import EpochEnd, TrainConfig, train

    folder.mkdir(parents=True, exist_ok=True)
    paths = {name: folder / f"wp_{name}.npz" for name in names}
    todo = [n for n in names if not paths[n].exists()]
    if not todo:
        return paths
    vocab, tok_cfg, ids = split_corpus(corpus)
    for name in todo:
        c = CONFIGS[name]
        if dropout is not None:
            c = {**c, "dropout": dropout}
        model_cfg = ModelConfig(vocab_size=len(vocab), **c)
        train_cfg = TrainConfig(epochs=epochs, batch_size=BATCH, seq_len=SEQ_LEN)

        def on_event(ev, name=name):
            if isinstance(ev, EpochEnd):
                log(
                    f"{name} epoch {ev.epoch}: train ppl {math.exp(ev.train_loss):.1f}, "
                    f"val ppl {ev.val_perplexity:.1f}, {ev.elapsed:.0f} s"
                )

        log(f"training {name} ({c}) for {epochs} epochs")
        result = train(ids["train"], model_cfg, train_cfg, val_ids=ids["valid"], on_event=on_event)
        model = TrainedModel(model_cfg, tok_cfg, vocab, result.params, result.history)
        save_model(paths[name], model)
        log(f"saved {paths[name]}")
    return paths


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--dir", type=Path, required=True, help="folder for the model files")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--configs", default="lstm,rnn")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--dropout", type=float, default=None, help="default: rnngen's")
    args = p.parse_args(argv)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    sys.path.insert(0, str(REPO))
    train_models(args.dir, args.configs.split(","), args.epochs, dropout=args.dropout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
