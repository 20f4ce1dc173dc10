"""Does a trained model score text from any start? The figures behind TrainConfig.state_reset.

For a model and a held-out text: the validation figure stored in the model, `eval` of the whole
text (one stream from its start), `eval` of 20,000-character windows from 10 random offsets, the
median per-line perplexity `score` gives (each line from the zero state), the spectral radius of
each recurrent matrix's (H, H) block, and the share of saturated units (|h| > 0.99) of the top
layer after 5, 20 and 40 tokens from the zero state.

    python benchmarks/collapse_check.py model.npz held_out.txt

With --train BOOK it first trains one small model per cell on the book's start for one epoch
(what tests/test_collapse.py did while the suite could read ../shared/corpora) and checks that
`eval` from 10 random offsets of the held-out tenth is within 1.3 times the validation figure, and
that `score`'s median per-line perplexity is within 3 times `eval`'s; it exits 1 if any is not.
Before training reset states to zero (TrainConfig.state_reset), the tanh RNN trained on 1.3 million
characters of War and Peace scored held-out lines at a median of about 9,000 against an `eval` of
124.

    python benchmarks/collapse_check.py --train ../shared/corpora/war_and_peace.txt
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rnngen.api import evaluate_text, open_model, score_lines  # noqa: E402
from rnngen.core.model import ModelConfig, init_state, step  # noqa: E402
from rnngen.files.storage import TrainedModel  # noqa: E402
from rnngen.text.corpus import read_text  # noqa: E402
from rnngen.text.tokenize import TokenizerConfig, tokenize  # noqa: E402
from rnngen.text.vocab import build_vocab  # noqa: E402
from rnngen.training.train import TrainConfig, train  # noqa: E402

# Characters of the book's start each cell trains on: for the tanh RNN enough that one epoch
# collapsed it; the gated cells, which did not, train on less to keep the check short.
CHARS = {"rnn": 1_300_000, "lstm": 400_000, "gru": 400_000}
WINDOW = 10_000  # characters each `eval` from an offset scores


def main(model_path: str, held_path: str, seed: int = 0) -> None:
    model = open_model(model_path)
    cfg = model.config
    text = Path(held_path).read_text(encoding="utf-8")
    whole = evaluate_text(model, text).result.perplexity
    offsets = np.random.default_rng(seed).integers(0, len(text) // 2, 10)
    windows = [evaluate_text(model, text[o : o + 20000]).result.perplexity for o in offsets]
    lines = [line for line in text.splitlines() if line.strip()]
    per_line = [s.perplexity for _, s in score_lines(model, lines) if s.tokens]
    radii = {
        k: float(max(abs(np.linalg.eigvals(v[:, : cfg.hidden]))))
        for k, v in model.params.items()
        if k.endswith("Wh")
    }
    ids = model.vocab.encode(tokenize(" ".join(lines[:50]), model.tokenizer))[:40]
    h, saturated = init_state(cfg, 1), []
    for t in ids:
        _, h = step(model.params, cfg, np.array([t], dtype=np.int32), h)
        saturated.append(float(np.mean(np.abs(h[-1, 0]) > 0.99)))
    print(
        f"{model_path}: validation {model.history.get('best_val_ppl'):.1f}, eval {whole:.1f}, "
        f"eval from 10 offsets median {np.median(windows):.1f} max {max(windows):.1f}, "
        f"score line median {np.median(per_line):.1f}, spectral radius "
        + ", ".join(f"{k} {v:.2f}" for k, v in radii.items())
        + f", saturated after 5/20/40 tokens {saturated[4]:.2f}/{saturated[19]:.2f}/"
        f"{saturated[-1]:.2f}"
    )


def book(path: str, chars: int):
    """(train text, held-out text): the first `chars` characters, cut 90/10 at a line break."""
    lines = read_text(path)[:chars].splitlines(keepends=True)
    cut = int(len(lines) * 0.9)
    return "".join(lines[:cut]), "".join(lines[cut:])


def scores_agree(path: str, cell: str) -> bool:
    """Train one small model of the cell for an epoch; whether its scores agree from any start."""
    train_text, held_text = book(path, CHARS[cell])
    tok = TokenizerConfig()
    train_tokens = tokenize(train_text, tok)
    vocab = build_vocab(train_tokens, tok.specials, max_size=2000)
    model_cfg = ModelConfig(len(vocab), hidden=64, cell=cell)
    held_ids = vocab.encode(tokenize(held_text, tok))
    result = train(vocab.encode(train_tokens), model_cfg, TrainConfig(epochs=1), held_ids)
    model = TrainedModel(model_cfg, tok, vocab, result.params, result.history)
    validation = result.history["best_val_ppl"]
    whole = evaluate_text(model, held_text).result.perplexity
    offsets = np.random.default_rng(0).integers(0, len(held_text) - WINDOW, 10)
    from_offsets = [
        evaluate_text(model, held_text[o : o + WINDOW]).result.perplexity for o in offsets
    ]
    lines = [line for line in held_text.splitlines() if line.strip()]
    median = float(np.median([s.perplexity for _, s in score_lines(model, lines) if s.tokens]))
    ok = all(1 / 1.3 <= p / validation <= 1.3 for p in from_offsets)
    ok = ok and 1 / 3 <= median / whole <= 3
    print(
        f"{cell}: validation {validation:.1f}, eval {whole:.1f}, from offsets "
        f"{min(from_offsets):.1f}..{max(from_offsets):.1f}, score line median {median:.1f}: "
        + ("agree" if ok else "DISAGREE")
    )
    return ok


if __name__ == "__main__":
    if sys.argv[1] == "--train":
        sys.exit(0 if all([scores_agree(sys.argv[2], c) for c in CHARS]) else 1)
    main(*sys.argv[1:3])
