"""Does a trained model score text from any start? The figures behind TrainConfig.state_reset.

For a model and a held-out text: the validation figure stored in the model, `eval` of the whole
text (one stream from its start), `eval` of 20,000-character windows from 10 random offsets, the
median per-line perplexity `score` gives (each line from the zero state), the spectral radius of
each recurrent matrix's (H, H) block, and the share of saturated units (|h| > 0.99) of the top
layer after 5, 20 and 40 tokens from the zero state.

    python benchmarks/collapse_check.py model.npz held_out.txt
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rnngen.api import evaluate_text, open_model, score_lines  # noqa: E402
from rnngen.core.model import init_state, step  # noqa: E402
from rnngen.text.tokenize import tokenize  # noqa: E402


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


if __name__ == "__main__":
    main(*sys.argv[1:3])
