"""Model quality: rnngen against a PyTorch reference of the same network, on War and Peace.

Both implementations train the same architecture from the same initial weights on the same batches
with the same optimiser and schedule (see reference_torch.py); the table compares their test
perplexities after the same number of epochs, and a unigram baseline.

Data: the corpus is tokenised with rnngen's default word tokenizer, the tokens are split
contiguously 90/5/5 into train/validation/test, the vocabulary is the 10,000 most frequent words of
the train part plus <unk>, and each part is encoded with it. Validation (for keeping the best model
and decaying the learning rate) is scored as `rnngen.train.train` does; the test perplexity is one
stream over the whole test part, every token predicted from all the tokens before it.

    python benchmarks/quality.py --epochs 4 --out benchmarks/results/quality.md
    python benchmarks/quality.py --max-tokens 60000 --epochs 1          # a quick smoke run

Progress goes to stderr, the markdown table to stdout (and to --out).
"""

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpora" / "war_and_peace.txt"

# name -> model and batching settings. "lstm" is Zaremba et al.'s "small" network (without their
# SGD schedule: every configuration uses rnngen's default optimiser and learning rate).
CONFIGS = {
    "rnn": {"cell": "rnn", "layers": 1, "hidden": 256, "embed": 256, "batch": 20, "seq_len": 20},
    "lstm": {"cell": "lstm", "layers": 2, "hidden": 200, "embed": 200, "batch": 20, "seq_len": 20},
    "gru": {"cell": "gru", "layers": 1, "hidden": 256, "embed": 256, "batch": 20, "seq_len": 20},
    # an LSTM of exactly the rnn configuration's size (layers, hidden, embedding)
    "lstm256": {
        "cell": "lstm",
        "layers": 1,
        "hidden": 256,
        "embed": 256,
        "batch": 20,
        "seq_len": 20,
    },
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="plain-text corpus")
    p.add_argument("--epochs", type=int, default=4, help="epochs for both implementations")
    p.add_argument(
        "--configs",
        default="rnn,lstm,gru,lstm256",
        help=f"comma-separated, from: {','.join(CONFIGS)}",
    )
    p.add_argument("--threads", type=int, default=2, help="CPU threads (PyTorch and BLAS)")
    p.add_argument("--max-tokens", type=int, default=None, help="use only the first N tokens")
    p.add_argument("--max-vocab", type=int, default=10000, help="most frequent train words kept")
    p.add_argument("--optimizer", default="adam", choices=("adam", "sgd", "adagrad"))
    p.add_argument(
        "--lr", type=float, default=None, help="default: rnngen's for the optimizer/cell"
    )
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--clip", type=float, default=None, help="default: rnngen's TrainConfig")
    p.add_argument("--val-streams", type=int, default=None, help="default: rnngen's TrainConfig")
    p.add_argument("--tie-weights", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-seq-len", type=int, default=100, help="chunk length for the test pass")
    p.add_argument("--skip-torch", action="store_true", help="train only rnngen")
    p.add_argument("--out", type=Path, default=None, help="also write the table to this file")
    args = p.parse_args(argv)
    unknown = [c for c in args.configs.split(",") if c not in CONFIGS]
    if unknown:
        p.error(f"unknown configuration(s) {unknown}; use {', '.join(CONFIGS)}")
    return args


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def fmt_seconds(s: float) -> str:
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.1f} min"


def git_revision() -> str:
    """The commit rnngen was imported from, and whether rnngen/ had uncommitted changes."""
    import subprocess

    def git(*cmd):
        return subprocess.run(
            ["git", *cmd], cwd=REPO, capture_output=True, text=True, check=False
        ).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD")
    if not commit:
        return "(not a git checkout)"
    dirty = git("status", "--porcelain", "--", "rnngen")
    return f"at commit {commit}" + (" with uncommitted changes under rnngen/" if dirty else "")


def split_corpus(path, max_vocab: int, max_tokens: int | None = None):
    """The benchmarks' data: `path` tokenized by rnngen's default word tokenizer (its first
    `max_tokens` tokens, if given), split contiguously 90/5/5, the `max_vocab` most frequent
    train words plus <unk>. Returns (tokenizer config, token lists by part, vocabulary, ids by
    part). Imports rnngen here: callers set their thread counts before it loads NumPy."""
    from rnngen.text.corpus import read_text
    from rnngen.text.tokenize import TokenizerConfig, tokenize
    from rnngen.text.vocab import build_vocab

    tok_cfg = TokenizerConfig()
    tokens = tokenize(read_text(str(path)), tok_cfg)
    if max_tokens:
        tokens = tokens[:max_tokens]
    n = len(tokens)
    a, b = int(n * 0.90), int(n * 0.95)
    parts = {"train": tokens[:a], "valid": tokens[a:b], "test": tokens[b:]}
    vocab = build_vocab(parts["train"], tok_cfg.specials, max_size=max_vocab)
    ids = {k: vocab.encode(v) for k, v in parts.items()}
    return tok_cfg, parts, vocab, ids


def main(argv=None) -> int:
    args = parse_args(argv)
    # Same thread count for NumPy's BLAS as for PyTorch; must be set before NumPy loads, and so
    # must rnngen be imported (its OpenBLAS setting, see rnngen/__init__.py).
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    import rnngen  # noqa: F401

    sys.path.insert(0, str(REPO))
    sys.path.insert(0, str(Path(__file__).resolve().parent))

    import math

    import torch
    from reference_torch import check_same_forward, evaluate_torch, to_rnngen_params, train_torch

    from rnngen.core.model import ModelConfig
    from rnngen.reading.evaluate import evaluate, unigram_eval
    from rnngen.training.train import EpochEnd, Progress, TrainConfig, train

    torch.set_num_threads(args.threads)
    revision = git_revision()
    log(f"rnngen {revision}")
    run_start = time.perf_counter()

    log("forward-equivalence check (float64, dropout 0): rnngen vs PyTorch")
    check = check_same_forward(verbose=False)
    check_max = {k: max(v[k] for v in check.values()) for k in ("loss", "state", "grad")}
    log(
        "  passed: max relative difference loss {loss:.1e}, final state {state:.1e}, "
        "gradients {grad:.1e}".format(**check_max)
    )

    # --- data -----------------------------------------------------------------------------------
    tok_cfg, parts, vocab, ids = split_corpus(args.corpus, args.max_vocab, args.max_tokens)
    n = sum(len(p) for p in parts.values())
    V = len(vocab)
    test_oov = float((ids["test"] == 0).mean())
    log(
        f"{args.corpus.name}: {n:,} tokens -> train {len(ids['train']):,}, validation "
        f"{len(ids['valid']):,}, test {len(ids['test']):,}; vocabulary {V:,}; "
        f"test <unk> rate {test_oov:.1%}"
    )
    unigram = unigram_eval(ids["train"], ids["test"], V).perplexity
    log(f"unigram test perplexity {unigram:.1f}")

    # --- training -------------------------------------------------------------------------------
    rows, details, lrs = [], [], {}
    for name in args.configs.split(","):
        c = CONFIGS[name]
        model_cfg = ModelConfig(
            vocab_size=V,
            embed=c["embed"],
            hidden=c["hidden"],
            layers=c["layers"],
            cell=c["cell"],
            dropout=args.dropout,
            tie_weights=args.tie_weights,
        )
        overrides = {"clip": args.clip, "val_streams": args.val_streams}
        train_cfg = TrainConfig(
            epochs=args.epochs,
            batch_size=c["batch"],
            seq_len=c["seq_len"],
            optimizer=args.optimizer,
            lr=args.lr,
            seed=args.seed,
            **{k: v for k, v in overrides.items() if v is not None},
        )
        lr = train_cfg.learning_rate(c["cell"])
        lrs[name] = lr
        desc = (
            f"{c['layers']}x{c['hidden']}, embed {c['embed']}, batch {c['batch']}, "
            f"seq_len {c['seq_len']}"
        )

        def on_event(ev, name=name):
            if isinstance(ev, Progress) and (ev.step % 500 == 0 or ev.step == ev.steps_per_epoch):
                log(
                    f"  rnngen  {name} epoch {ev.epoch} step {ev.step}/{ev.steps_per_epoch} "
                    f"train ppl {math.exp(ev.loss):.1f} ({ev.tokens_per_second:,.0f} tokens/s)"
                )
            elif isinstance(ev, EpochEnd):
                log(
                    f"  rnngen  {name} epoch {ev.epoch} done: train ppl "
                    f"{math.exp(ev.train_loss):.1f}, val ppl {ev.val_perplexity:.1f}"
                    f"{' (best)' if ev.is_best else ''}, next lr {ev.lr:g}, {ev.elapsed:.0f} s"
                )

        log(f"{name}: {desc}, {args.optimizer} lr {lr:g}, {args.epochs} epochs: rnngen")
        t0, c0 = time.perf_counter(), time.process_time()
        result = train(ids["train"], model_cfg, train_cfg, val_ids=ids["valid"], on_event=on_event)
        np_seconds, np_cpu = time.perf_counter() - t0, time.process_time() - c0
        np_test = evaluate(result.params, model_cfg, ids["test"], 1, args.eval_seq_len)
        log(f"  rnngen  {name} test ppl {np_test.perplexity:.2f} ({np_seconds:.0f} s training)")
        for e in result.history["per_epoch"]:
            details.append((name, "rnngen", e["epoch"], e["train_loss"], e["val_loss"], e["lr"]))
        np_epochs = result.history["epochs"]

        th_seconds = th_cpu = th_ppl = th_epochs = None
        if not args.skip_torch:

            def on_epoch(rec, name=name):
                log(
                    f"  PyTorch {name} epoch {rec['epoch']} done: train ppl "
                    f"{math.exp(rec['train_loss']):.1f}, val ppl {math.exp(rec['val_loss']):.1f}"
                    f"{' (best)' if rec['is_best'] else ''}, next lr {rec['lr']:g}, "
                    f"{rec['elapsed']:.0f} s"
                )

            def on_progress(epoch, step, steps, loss, elapsed, name=name):
                log(
                    f"  PyTorch {name} epoch {epoch} step {step}/{steps} train ppl "
                    f"{math.exp(loss):.1f} ({elapsed:.0f} s)"
                )

            log(f"{name}: PyTorch reference")
            t0, c0 = time.perf_counter(), time.process_time()
            ref = train_torch(
                ids["train"], ids["valid"], model_cfg, train_cfg, on_epoch, on_progress
            )
            th_seconds, th_cpu = time.perf_counter() - t0, time.process_time() - c0
            th_ppl = math.exp(evaluate_torch(ref.model, ids["test"], 1, args.eval_seq_len))
            # the same parameters scored by rnngen's evaluate: checks the two test passes agree
            cross = evaluate(
                to_rnngen_params(ref.model), model_cfg, ids["test"], 1, args.eval_seq_len
            ).perplexity
            log(
                f"  PyTorch {name} test ppl {th_ppl:.2f} (rnngen.evaluate on the same "
                f"parameters: {cross:.2f}; {th_seconds:.0f} s training)"
            )
            for e in ref.history["per_epoch"]:
                details.append(
                    (name, "PyTorch", e["epoch"], e["train_loss"], e["val_loss"], e["lr"])
                )
            th_epochs = ref.history["epochs"]
        rows.append(
            {
                "cell": c["cell"],
                "desc": desc,
                "epochs": np_epochs
                if th_epochs in (None, np_epochs)
                else f"{np_epochs} / {th_epochs}",
                "np_s": np_seconds,
                "th_s": th_seconds,
                "np_cpu": np_cpu,
                "th_cpu": th_cpu,
                "np_ppl": np_test.perplexity,
                "th_ppl": th_ppl,
            }
        )

    # --- report ---------------------------------------------------------------------------------
    def num(x, f="{:.1f}"):
        return "-" if x is None else f.format(x)

    lr_text = ", ".join(f"{k} {v:g}" for k, v in lrs.items())
    tc = train_cfg  # the settings every configuration shares
    val_text = "one stream" if tc.val_streams == 1 else f"{tc.val_streams} parallel streams"
    lines = [
        f"Corpus {args.corpus.name}: {n:,} tokens (rnngen's default word tokenizer), split "
        f"contiguously 90/5/5: train {len(ids['train']):,}, validation {len(ids['valid']):,}, "
        f"test {len(ids['test']):,}. Vocabulary: the {args.max_vocab:,} most frequent train words "
        f"+ <unk> ({V:,}); test <unk> rate {test_oov:.1%}.",
        "",
        f"rnngen {revision}.",
        "",
        f"Training: {args.optimizer}, lr {lr_text}; clip {tc.clip:g}, lr / {tc.lr_decay:g} after "
        f"an epoch without validation improvement (validation scored on {val_text}), patience "
        f"{tc.patience}, dropout {args.dropout:g}"
        f"{', tied weights' if args.tie_weights else ''}, seed {args.seed}, float32. Both start "
        f"from the same weights and see the same batches. Test: one stream over the test part. "
        f"Threads: {args.threads}. Wall time: training including per-epoch validation.",
        "",
        "Forward-equivalence check (float64, dropout 0, rnn/lstm/gru and tied): max relative "
        "difference loss {loss:.1e}, final state {state:.1e}, gradients {grad:.1e}.".format(
            **check_max
        ),
        "",
        "| cell | configuration | epochs | wall time rnngen | wall time PyTorch "
        "| test ppl rnngen | test ppl PyTorch | rnngen / PyTorch |",
        "|---|---|---|---|---|---|---|---|",
        f"| unigram | add-one smoothed train frequencies | - | - | - | {unigram:.1f} "
        f"| {unigram:.1f} | 1.000 |",
    ]
    for r in rows:
        ratio = None if r["th_ppl"] is None else r["np_ppl"] / r["th_ppl"]
        lines.append(
            f"| {r['cell']} | {r['desc']} | {r['epochs']} | {fmt_seconds(r['np_s'])} | "
            f"{'-' if r['th_s'] is None else fmt_seconds(r['th_s'])} | {r['np_ppl']:.1f} | "
            f"{num(r['th_ppl'])} | {num(ratio, '{:.3f}')} |"
        )
    lines += [
        "",
        "Timing (training including validation; CPU time is this process's, all threads, so it "
        "is less affected than wall time by other work on the machine):",
        "",
        "| cell | configuration | wall rnngen | wall PyTorch | CPU rnngen | CPU PyTorch |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['cell']} | {r['desc']} | {fmt_seconds(r['np_s'])} | "
            f"{'-' if r['th_s'] is None else fmt_seconds(r['th_s'])} | "
            f"{fmt_seconds(r['np_cpu'])} | "
            f"{'-' if r['th_cpu'] is None else fmt_seconds(r['th_cpu'])} |"
        )
    lines += [
        "",
        "Per epoch (perplexities; lr is the rate for the next epoch):",
        "",
        "| config | implementation | epoch | train ppl | validation ppl | next lr |",
        "|---|---|---|---|---|---|",
    ]
    for name, impl, epoch, tr, va, lr in details:
        lines.append(
            f"| {name} | {impl} | {epoch} | {math.exp(tr):.1f} | {math.exp(va):.1f} | {lr:g} |"
        )
    total = time.perf_counter() - run_start
    lines += ["", f"Total run time: {fmt_seconds(total)}."]
    table = "\n".join(lines) + "\n"
    print(table, end="")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(table, encoding="utf-8")
        log(f"wrote {args.out}")
    log(f"done in {fmt_seconds(total)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
