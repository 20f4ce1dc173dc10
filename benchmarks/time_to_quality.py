"""Time to quality: the test perplexity a model reaches in a wall-clock training budget, rnngen
(`train --time`, each cell at its default recipe) against PyTorch trained for the same wall time
with the recipe of PyTorch's word_language_model example.

Data as in quality.py: War and Peace, rnngen's default word tokenizer, split contiguously 90/5/5
into train/validation/test, the 10,000 most frequent train words plus <unk>. Sizes as quality.py's
configurations: tanh RNN 1x256, LSTM 2x200 (Zaremba et al.'s small network), GRU 1x256, each with
embedding = hidden (rnngen's default, which ties the output layer to the embedding; the PyTorch
example's model is untied).

- rnngen: `rnngen.api.run_training` with `TrainConfig(time_limit=B)`, the function `rnngen train
  --time B` runs, on the train and validation parts written out as text: its wall time covers
  everything the budget covers (reading and encoding the text, training, validation, the
  end-of-run score and the gradient statistics, saving); every other setting (optimiser,
  learning rate, clip, batch, seq-len, dropout, state resets, validation) is rnngen's default.
- PyTorch: the word_language_model example's model and recipe (its RNNModel: embedding and decoder
  uniform in +-0.1, PyTorch's own initialisation for the recurrent layers; SGD lr 20, clip 0.25,
  dropout 0.2, batch 20, seq-len 35, lr / 4 when a validation does not improve, the best model
  kept), with validation after every epoch as in the example and once more when the budget ends,
  the time for that last validation reserved inside the budget. For the tanh RNN, which diverges
  at lr 20, the best of a small sweep (--rnn-lrs, default 2.5, 5 and 10) is reported.

Both are scored on the test part by one stream, every token predicted from all before it; bits
per character divide the test NLL by the characters of the test text (detokenized). Wall time
counts training and validation, not the test pass. The runs of one budget follow one another, so
on a shared machine the load they see differs: the table gives each run's CPU share.

    python benchmarks/time_to_quality.py --out benchmarks/results/time_to_quality.md
    python benchmarks/time_to_quality.py --budgets 0.25 --cells rnn --max-tokens 60000 \\
        --rnn-lrs 5                                                     # a smoke run, ~1 minute
"""

import argparse
import math
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpora" / "war_and_peace.txt"

SIZES = {  # cell -> (layers, hidden = embedding)
    "rnn": (1, 256),
    "lstm": (2, 200),
    "gru": (1, 256),
}
EXAMPLE = {"lr": 20.0, "clip": 0.25, "dropout": 0.2, "batch": 20, "seq_len": 35, "decay": 4.0}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="plain-text corpus")
    p.add_argument("--budgets", default="2,5,10", help="minutes of training, comma-separated")
    p.add_argument("--cells", default="rnn,lstm,gru", help=f"from: {','.join(SIZES)}")
    p.add_argument("--rnn-lrs", default="2.5,5,10", help="PyTorch tanh RNN lr sweep")
    p.add_argument("--threads", type=int, default=2, help="CPU threads (PyTorch and BLAS)")
    p.add_argument("--max-tokens", type=int, default=None, help="use only the first N tokens")
    p.add_argument("--max-vocab", type=int, default=10000, help="most frequent train words kept")
    p.add_argument("--skip-torch", action="store_true", help="train only rnngen")
    p.add_argument("--skip-rnngen", action="store_true", help="train only PyTorch")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None, help="also write the report to this file")
    args = p.parse_args(argv)
    unknown = [c for c in args.cells.split(",") if c not in SIZES]
    if unknown:
        p.error(f"unknown cell(s) {unknown}; use {', '.join(SIZES)}")
    return args


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def main(argv=None) -> int:
    args = parse_args(argv)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    sys.path.insert(0, str(REPO))
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import rnngen  # noqa: F401  (its BLAS settings before NumPy loads)

    # isort: split
    import numpy as np
    import torch
    from quality import git_revision, split_corpus
    from reference_torch import evaluate_torch
    from torch import nn

    from rnngen import api
    from rnngen.reading.evaluate import unigram_eval
    from rnngen.text.batching import iter_batches, make_streams
    from rnngen.text.tokenize import detokenize
    from rnngen.training.train import TrainConfig

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    class ExampleLM(nn.Module):
        """The word_language_model example's RNNModel (untied): encoder, dropout, RNN, dropout,
        decoder; encoder and decoder uniform in +-0.1, decoder bias zero."""

        def __init__(self, cell, V, H, L, dropout):
            super().__init__()
            self.cell, self.H, self.L = cell, H, L
            self.encoder = nn.Embedding(V, H)
            self.drop = nn.Dropout(dropout)
            kinds = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
            extra = {"nonlinearity": "tanh"} if cell == "rnn" else {}
            self.rnn = kinds[cell](H, H, num_layers=L, dropout=dropout if L > 1 else 0, **extra)
            self.decoder = nn.Linear(H, V)
            nn.init.uniform_(self.encoder.weight, -0.1, 0.1)
            nn.init.uniform_(self.decoder.weight, -0.1, 0.1)
            nn.init.zeros_(self.decoder.bias)

        def forward(self, inputs, state):
            out, state = self.rnn(self.drop(self.encoder(inputs)), state)
            return self.decoder(self.drop(out).reshape(-1, self.H)), state

        def zero_state(self, batch):
            h = torch.zeros(self.L, batch, self.H)
            return (h, torch.zeros_like(h)) if self.cell == "lstm" else h

    def detach(state):
        return tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()

    def train_example(cell, lr, seconds, train_ids, val_ids):
        """The example's recipe for `seconds` of wall time, validation included; returns the
        best model (by validation) and a record."""
        L, H = SIZES[cell]
        model = ExampleLM(cell, V, H, L, EXAMPLE["dropout"])
        streams = make_streams(train_ids, EXAMPLE["batch"])
        best_loss, best_state, steps, epochs, validations = math.inf, None, 0, 0, 0
        val_seconds = None  # the last validation's cost, reserved at the budget's end
        step_seconds = 0.0
        start = time.perf_counter()
        cpu0 = time.process_time()

        def validate():
            nonlocal best_loss, best_state, lr, val_seconds, validations
            t0 = time.perf_counter()
            loss = evaluate_torch(model, val_ids, 1, EXAMPLE["seq_len"])
            val_seconds = time.perf_counter() - t0
            validations += 1
            if loss < best_loss:
                best_loss = loss
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                lr /= EXAMPLE["decay"]
            return loss

        out_of_time = False
        while not out_of_time:
            model.train()
            state = model.zero_state(EXAMPLE["batch"])
            for inputs, targets in iter_batches(streams, EXAMPLE["seq_len"]):
                elapsed = time.perf_counter() - start
                # before the first validation, reserve the validation at the training speed
                reserve = val_seconds
                if reserve is None:
                    per_token = step_seconds / max(steps * inputs.size, 1)
                    reserve = len(val_ids) * per_token / 2
                if steps and elapsed + step_seconds / steps + reserve > seconds:
                    out_of_time = True
                    break
                t0 = time.perf_counter()
                x = torch.from_numpy(inputs.astype(np.int64))
                y = torch.from_numpy(targets.astype(np.int64)).reshape(-1)
                logits, state = model(x, state)
                loss = nn.functional.cross_entropy(logits, y)
                model.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(model.parameters(), EXAMPLE["clip"])
                with torch.no_grad():
                    for p in model.parameters():
                        p.add_(p.grad, alpha=-lr)
                state = detach(state)
                steps += 1
                step_seconds += time.perf_counter() - t0
            else:
                epochs += 1
                validate()
                continue
            validate()
        wall = time.perf_counter() - start
        model.load_state_dict(best_state)
        record = {
            "wall": wall,
            "cpu": time.process_time() - cpu0,
            "steps": steps,
            "epochs": epochs,  # completed
            "val_ppl": math.exp(min(best_loss, 700)),
            "validations": validations,
        }
        return model, record

    revision = git_revision()
    log(f"rnngen {revision}")
    tok_cfg, parts, vocab, ids = split_corpus(args.corpus, args.max_vocab, args.max_tokens)
    n = sum(len(p) for p in parts.values())
    V = len(vocab)
    test_chars = len(detokenize(parts["test"][1:], tok_cfg))  # the tokens the test pass predicts
    unigram = unigram_eval(ids["train"], ids["test"], V)
    log(
        f"{args.corpus.name}: {n:,} tokens -> train {len(ids['train']):,}, validation "
        f"{len(ids['valid']):,}, test {len(ids['test']):,} ({test_chars:,} characters); "
        f"vocabulary {V:,}; unigram test perplexity {unigram.perplexity:.1f}"
    )

    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="time-to-quality-"))
    texts = {"out": folder / "model.npz", "test_text": detokenize(parts["test"], tok_cfg)}
    for part in ("train", "valid"):  # what `rnngen train --valid` reads
        texts[part] = folder / f"{part}.txt"
        texts[part].write_text(detokenize(parts[part], tok_cfg), encoding="utf-8")

    def bpc(nll: float) -> float:
        return nll / math.log(2) / test_chars

    budgets = [float(x) for x in args.budgets.split(",")]
    cells = args.cells.split(",")
    rnn_lrs = [float(x) for x in args.rnn_lrs.split(",")]
    rows = []  # dicts: budget, impl, cell, lr, test_ppl, bpc, val_ppl, wall, cpu, steps, epochs
    for minutes in budgets:
        seconds = minutes * 60
        for cell in cells:
            L, H = SIZES[cell]
            if not args.skip_rnngen:
                # what `rnngen train --cell C --layers L --hidden H` builds: the embedding
                # as wide as the hidden state, the output layer tied to it
                train_cfg = TrainConfig(epochs=None, time_limit=seconds, seed=args.seed)
                log(f"{minutes:g} min, rnngen {cell} {L}x{H}")
                request = api.TrainRequest(
                    str(texts["train"]), str(texts["out"]), str(texts["valid"]), tok_cfg,
                    args.max_vocab, model={"hidden": H, "layers": L, "cell": cell},
                    train=train_cfg,
                )  # fmt: skip
                t0, c0 = time.monotonic(), time.process_time()
                outcome = api.run_training(request, started=t0)
                wall, cpu = time.monotonic() - t0, time.process_time() - c0
                model_cfg = outcome.model.config
                test = api.evaluate_text(outcome.model, texts["test_text"], 1, 100).result
                result = outcome.model
                h = result.history
                row = {
                    "budget": minutes,
                    "impl": "rnngen",
                    "cell": cell,
                    "recipe": f"{train_cfg.optimizer} lr {train_cfg.learning_rate(cell):g}, "
                    f"clip {train_cfg.clip:g}, dropout {model_cfg.dropout:g}, batch "
                    f"{train_cfg.batch_size}, seq-len {train_cfg.seq_len}"
                    + (", tied" if model_cfg.tie_weights else ""),
                    "test_ppl": test.perplexity,
                    "bpc": bpc(test.nll),
                    "val_ppl": h.get("best_val_ppl", math.nan),
                    "wall": wall,
                    "cpu": cpu,
                    "steps": h.get("steps", 0),
                    "tokens": h.get("steps", 0) * train_cfg.batch_size * train_cfg.seq_len,
                }
                rows.append(row)
                log(f"  test ppl {row['test_ppl']:.1f}, {row['steps']} steps, {wall:.0f} s wall")
            if args.skip_torch:
                continue
            best = None
            for lr in rnn_lrs if cell == "rnn" else [EXAMPLE["lr"]]:
                log(f"{minutes:g} min, PyTorch example {cell} {L}x{H}, lr {lr:g}")
                try:
                    model, rec = train_example(cell, lr, seconds, ids["train"], ids["valid"])
                    test_loss = evaluate_torch(model, ids["test"], 1, 100)
                except (RuntimeError, TypeError) as e:  # no finite validation: diverged
                    log(f"  failed: {e}")
                    continue
                nll = test_loss * (len(ids["test"]) - 1)
                row = {
                    "budget": minutes,
                    "impl": "PyTorch example",
                    "cell": cell,
                    "recipe": f"sgd lr {lr:g}, clip {EXAMPLE['clip']:g}, dropout "
                    f"{EXAMPLE['dropout']:g}, batch {EXAMPLE['batch']}, seq-len "
                    f"{EXAMPLE['seq_len']}",
                    "test_ppl": math.exp(min(test_loss, 700)),
                    "bpc": bpc(nll),
                    "val_ppl": rec["val_ppl"],
                    "wall": rec["wall"],
                    "cpu": rec["cpu"],
                    "steps": rec["steps"],
                    "tokens": rec["steps"] * EXAMPLE["batch"] * EXAMPLE["seq_len"],
                    "sweep": cell == "rnn",
                }
                log(f"  test ppl {row['test_ppl']:.1f}, {row['steps']} steps")
                rows.append(row)
                if best is None or row["test_ppl"] < best["test_ppl"]:
                    best = row
            if best is not None and best.get("sweep"):
                best["best_of_sweep"] = True

    lines = report(args, rows, n, ids, V, test_chars, unigram.perplexity, revision)
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    return 0


def report(args, rows, n, ids, V, test_chars, unigram, revision) -> list:
    load = os.getloadavg()
    lines = [
        f"Corpus {args.corpus.name}: {n:,} tokens (rnngen's default word tokenizer), split "
        f"contiguously 90/5/5: train {len(ids['train']):,}, validation {len(ids['valid']):,}, "
        f"test {len(ids['test']):,} ({test_chars:,} characters). Vocabulary: the "
        f"{args.max_vocab:,} most frequent train words + <unk> ({V:,}). Unigram test perplexity "
        f"{unigram:.1f}.",
        "",
        f"rnngen {revision}. Threads: {args.threads}. Load average at the end: "
        f"{load[0]:.1f} {load[1]:.1f} {load[2]:.1f}.",
        "",
        "| budget | implementation | cell | recipe | test ppl | bits/char | best val ppl "
        "| steps | tokens trained | wall | CPU share |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        mark = " (best of sweep)" if r.get("best_of_sweep") else ""
        lines.append(
            f"| {r['budget']:g} min | {r['impl']} | {r['cell']} | {r['recipe']}{mark} "
            f"| {r['test_ppl']:.1f} | {r['bpc']:.3f} | {r['val_ppl']:.1f} | {r['steps']:,} "
            f"| {r['tokens']:,} | {r['wall']:.0f} s | {r['cpu'] / max(r['wall'], 1e-9):.2f} |"
        )
    lines += ["", "Targets (lower test perplexity is better; ratio = rnngen / PyTorch):", ""]
    lines += ["| budget | comparison | rnngen | PyTorch | ratio | target ratio <= 0.85 |"]
    lines += ["|---|---|---|---|---|---|"]
    for minutes in sorted({r["budget"] for r in rows}):
        here = [r for r in rows if r["budget"] == minutes]
        ours = [r for r in here if r["impl"] == "rnngen"]
        ref = [r for r in here if r["impl"] != "rnngen"]
        pairs = []
        rnn_ours = [r for r in ours if r["cell"] == "rnn"]
        rnn_ref = [r for r in ref if r["cell"] == "rnn"]
        if rnn_ours and rnn_ref:
            pairs.append(("tanh RNN", rnn_ours[0], min(rnn_ref, key=lambda r: r["test_ppl"])))
        if ours and ref:
            pairs.append(
                (
                    "best cell",
                    min(ours, key=lambda r: r["test_ppl"]),
                    min(ref, key=lambda r: r["test_ppl"]),
                )
            )
        for name, o, t in pairs:
            ratio = o["test_ppl"] / t["test_ppl"]
            lines.append(
                f"| {minutes:g} min | {name} | {o['cell']} {o['test_ppl']:.1f} "
                f"| {t['cell']} {t['test_ppl']:.1f} | {ratio:.3f} "
                f"| {'met' if ratio <= 0.85 else 'not met'} |"
            )
    return lines


if __name__ == "__main__":
    sys.exit(main())
