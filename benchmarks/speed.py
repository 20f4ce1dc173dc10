"""Speed of rnngen against the PyTorch reference, same configuration and thread count.

    python benchmarks/speed.py [--configs a,b,c,c-class,c-class-lazy] [--rounds 5] [--threads 2]
    python benchmarks/speed.py --class-quality [--epochs 2] [--seeds 3]  # class vs full perplexity
    python benchmarks/speed.py --sampling --configs c,c-class  # sampling under sampler settings
    python benchmarks/speed.py --reading [--against OTHER_TREE]  # eval, score, sample via the API

For each configuration both implementations train on the same batches from the same initial
weights, interleaved round by round in one process (so machine noise hits both alike), and the
table reports the median step time as tokens per second for training (forward, backward, clipping
and the Adam update), evaluation (forward only) and sampling (one token at a time), rnngen's
achieved GFLOP/s (the model's matrix-product work over the step time) as a share of the float32
matrix-product peak this script measures, and each implementation's peak memory (resident set,
measured in a fresh subprocess per implementation and configuration: the whole process, and what
training added on top of the loaded model). The last line is the smallest rnngen/PyTorch training
ratio over the full-softmax configurations. Configurations (dropout off):

    a        rnn 1x256, embedding 256, V 10,000, batch 32, 35 steps
    b        lstm 2x200, embedding 200, V 10,000, batch 20, 20 steps
    c        rnn 1x512, embedding 512, V 33,278, batch 32, 35 steps, full softmax
    c-class  the same with the class-factorised softmax (rnngen only; PyTorch has none)
    c-class-lazy  c-class with lazy Adam on the batch's embedding rows (--sparse-embedding)

The token ids are drawn from a Zipf distribution over the vocabulary (id order = frequency order,
as in an rnngen vocabulary), which matters for the class softmax, whose cost follows the classes
of the targets. `--class-quality` instead trains the 1x256 rnn of the quality benchmark on War and
Peace with the full softmax, the class softmax and the class softmax with lazy Adam, and compares
their test perplexities (means over several seeds).
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

CONFIGS = {
    "a": dict(cell="rnn", layers=1, hidden=256, embed=256, V=10_000, batch=32, seq=35),
    "b": dict(cell="lstm", layers=2, hidden=200, embed=200, V=10_000, batch=20, seq=20),
    "c": dict(cell="rnn", layers=1, hidden=512, embed=512, V=33_278, batch=32, seq=35),
    "c-class": dict(cell="rnn", layers=1, hidden=512, embed=512, V=33_278, batch=32, seq=35,
                    softmax="class"),
    "c-class-lazy": dict(cell="rnn", layers=1, hidden=512, embed=512, V=33_278, batch=32, seq=35,
                         softmax="class", lazy_adam=True),
}  # fmt: skip
GATES = {"rnn": 1, "lstm": 4, "gru": 3}


def _threads_first(argv) -> int:
    """BLAS reads its thread count when NumPy loads, so it is set before any import of NumPy, and
    so is rnngen imported (its OpenBLAS setting, see rnngen/__init__.py)."""
    threads = 2
    if "--threads" in argv:
        threads = int(argv[argv.index("--threads") + 1])
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)
    import rnngen  # noqa: F401

    return threads


THREADS = _threads_first(sys.argv)

import numpy as np  # noqa: E402

from rnngen.core import model as M  # noqa: E402
from rnngen.core.class_softmax import make_class_bounds, word_classes  # noqa: E402
from rnngen.core.layers import Workspace  # noqa: E402
from rnngen.core.optim import Adam, clip_and_update  # noqa: E402
from rnngen.reading.generate import generate  # noqa: E402
from rnngen.reading.sampling import SamplerSettings  # noqa: E402
from rnngen.training.train import TrainConfig  # noqa: E402


def zipf_counts(V: int) -> np.ndarray:
    return np.maximum((1e7 / np.arange(1, V + 1)).astype(np.int64), 1)


def model_config(spec: dict) -> M.ModelConfig:
    softmax = spec.get("softmax", "full")
    bounds = make_class_bounds(zipf_counts(spec["V"])) if softmax == "class" else ()
    return M.ModelConfig(spec["V"], embed=spec["embed"], hidden=spec["hidden"],
                         layers=spec["layers"], cell=spec["cell"], dropout=0.0,
                         softmax=softmax, class_bounds=bounds)  # fmt: skip


def batches(spec: dict, n: int, seed: int = 0):
    """n (inputs, targets) pairs of (T, N) Zipf-distributed ids, targets the inputs shifted."""
    rng = np.random.default_rng(seed)
    counts = zipf_counts(spec["V"]).astype(np.float64)
    T, N = spec["seq"], spec["batch"]
    ids = rng.choice(spec["V"], size=(n * T + 1, N), p=counts / counts.sum()).astype(np.int32)
    return [(ids[i * T : (i + 1) * T], ids[i * T + 1 : (i + 1) * T + 1]) for i in range(n)]


def matmul_flops(cfg: M.ModelConfig, spec: dict, targets) -> float:
    """Multiply-adds x 2 of one training step's matrix products (forward, and twice that for
    the backward pass): input projections, recurrences, output layer."""
    M_ = spec["seq"] * spec["batch"]
    H = cfg.hidden
    forward = 0
    for layer in range(cfg.layers):
        n_in = cfg.embed if layer == 0 else H
        forward += 2 * M_ * (n_in + H) * GATES[cfg.cell] * H
    if cfg.softmax == "class":
        sizes = np.diff(cfg.class_bounds)[word_classes(cfg.class_bounds)[targets.reshape(-1)]]
        forward += 2 * H * (M_ * cfg.n_classes + int(sizes.sum()))
    else:
        forward += 2 * M_ * H * cfg.vocab_size
    return 3.0 * forward


class RnngenRunner:
    def __init__(self, cfg, spec):
        self.cfg, self.spec = cfg, spec
        self.params = M.init_params(cfg, np.random.default_rng(0), np.float32)
        # as `rnngen train` does: a row-sparse embedding gradient, Adam exactly dense on it
        # unless asked to be lazy (--sparse-embedding)
        chosen = TrainConfig(lazy_adam=spec.get("lazy_adam", False))
        self.opt = Adam(self.params, 1e-3, lazy=chosen.lazy_adam_for(cfg))
        self.state = M.init_state(cfg, spec["batch"])
        self.workspace = Workspace()

    def train_step(self, x, y):
        r = M.loss_and_grads(self.params, self.cfg, x, y, self.state, None, True, self.workspace)
        clip_and_update(self.opt, self.params, r.grads, 1.0)
        self.state = r.state

    def eval_step(self, x, y):  # as rnngen.evaluate.evaluate does, logits in a workspace
        M.sequence_nll(self.params, self.cfg, x, y, self.state, self.workspace)

    def sample(self, n, settings=None):
        list(generate(self.params, self.cfg, [1], n, np.random.default_rng(0), settings))


class TorchRunner:
    def __init__(self, cfg, spec):
        import torch
        from reference_torch import TorchLM, detach_state, load_rnngen_params

        torch.set_num_threads(THREADS)
        self.torch, self.detach = torch, detach_state
        self.model = TorchLM(cfg)
        load_rnngen_params(self.model, M.init_params(cfg, np.random.default_rng(0), np.float32))
        self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        self.state = self.model.zero_state(spec["batch"])

    def train_step(self, x, y):
        torch = self.torch
        logits, state = self.model(torch.from_numpy(x.astype(np.int64)), self.state)
        loss = torch.nn.functional.cross_entropy(
            logits, torch.from_numpy(y.astype(np.int64)).reshape(-1)
        )
        self.opt.zero_grad(set_to_none=False)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.opt.step()
        self.state = self.detach(state)

    def eval_step(self, x, y):
        torch = self.torch
        with torch.no_grad():
            logits, _ = self.model(torch.from_numpy(x.astype(np.int64)), self.state)
            torch.nn.functional.cross_entropy(
                logits, torch.from_numpy(y.astype(np.int64)).reshape(-1), reduction="sum"
            )

    def sample(self, n):
        torch = self.torch
        gen = torch.Generator().manual_seed(0)
        with torch.no_grad():
            state = self.model.zero_state(1)
            token = torch.tensor([[1]])
            for _ in range(n):
                logits, state = self.model(token, state)
                probs = torch.softmax(logits[-1], dim=-1)
                token = torch.multinomial(probs, 1, generator=gen).reshape(1, 1)


def median_time(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def gemm_peak(rounds: int) -> float:
    """float32 GFLOP/s of a large square matrix product: the best of several tries."""
    rng = np.random.default_rng(0)
    a, b = (rng.random((2048, 2048), dtype=np.float32) for _ in range(2))
    out = np.empty_like(a)
    np.matmul(a, b, out=out)
    best = min(median_time(np.matmul, a, b, out) for _ in range(max(rounds, 3)))
    return 2 * 2048**3 / best / 1e9


def product_ceiling(cfg: M.ModelConfig, spec: dict, rounds: int) -> float:
    """GFLOP/s of a full-softmax training step's matrix products alone, each timed on its own at
    the model's shapes (output layer: h W, [h 1]^T E, E W^T; per layer: the input projection, its
    two gradients, the recurrent weight gradient, and per time step the forward and backward
    recurrent products). No implementation built from these products beats this share of the
    peak, so it is the ceiling the achieved share is measured against."""
    rng = np.random.default_rng(0)
    T, N, H, V = spec["seq"], spec["batch"], cfg.hidden, cfg.vocab_size
    M_, G = T * N, GATES[cfg.cell] * H

    def arr(*shape):
        return rng.random(shape, dtype=np.float32)

    products = [(arr(M_, H), arr(H, V)), (arr(H + 1, M_), arr(M_, V)), (arr(M_, V), arr(V, H))]
    per_step = []
    for layer in range(cfg.layers):
        n_in = cfg.embed if layer == 0 else H
        products += [(arr(M_, n_in), arr(n_in, G)), (arr(n_in, M_), arr(M_, G)),
                     (arr(M_, G), arr(G, n_in)), (arr(H, M_), arr(M_, G))]  # fmt: skip
        per_step += [(arr(N, H), arr(H, G)), (arr(N, G), arr(G, H))]
    seconds = flops = 0.0
    for group, repeat in ((products, 1), (per_step, T)):
        for a, b in group:
            out = np.empty((a.shape[0], b.shape[1]), np.float32)
            np.matmul(a, b, out=out)
            best = min(median_time(np.matmul, a, b, out) for _ in range(max(rounds, 3)))
            seconds += best * repeat
            flops += 2 * a.shape[0] * a.shape[1] * b.shape[1] * repeat
    return flops / seconds / 1e9


def memory_child(impl: str, name: str) -> None:
    """Runs in a subprocess: train a few steps, print the peak resident set and what training
    added to the resident set of the loaded model."""
    spec = CONFIGS[name]
    cfg = model_config(spec)
    data = batches(spec, 4)
    runner = (RnngenRunner if impl == "rnngen" else TorchRunner)(cfg, spec)
    with open("/proc/self/statm") as f:
        before = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    for x, y in data:
        runner.train_step(x, y)
    peak = peak_rss()
    print(json.dumps({"peak": peak, "added": peak - before}))


def peak_rss() -> int:
    """This process's peak resident set in bytes (VmHWM: unlike ru_maxrss, not inherited from
    the parent across fork and exec)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def measure_memory(impl: str, name: str) -> dict:
    run = subprocess.run(
        [sys.executable, __file__, "--memory-child", impl, name, "--threads", str(THREADS)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(run.stdout.strip().splitlines()[-1])


def bench(name: str, rounds: int, steps: int, peak: float, log) -> dict:
    spec = CONFIGS[name]
    cfg = model_config(spec)
    data = batches(spec, rounds * steps + 2)
    tokens = spec["seq"] * spec["batch"]
    impls = {"rnngen": RnngenRunner(cfg, spec)}
    if cfg.softmax == "full":
        impls["torch"] = TorchRunner(cfg, spec)
    times = {k: {"train": [], "eval": [], "sample": []} for k in impls}
    for runner in impls.values():  # warm-up
        runner.train_step(*data[0])
        runner.eval_step(*data[1])
    for r in range(rounds):
        for key, runner in impls.items():
            for s in range(steps):
                x, y = data[2 + r * steps + s]
                times[key]["train"].append(median_time(runner.train_step, x, y))
                times[key]["eval"].append(median_time(runner.eval_step, x, y))
            times[key]["sample"].append(median_time(runner.sample, 100) / 100)
        log(f"  {name} round {r + 1}/{rounds}")
    flops = np.mean([matmul_flops(cfg, spec, y) for _, y in data[2:]])
    result = {"name": name, "spec": spec, "softmax": cfg.softmax}
    for key in impls:
        t = {k: float(np.median(v)) for k, v in times[key].items()}
        result[key] = {
            "train": tokens / t["train"],
            "eval": tokens / t["eval"],
            "sample": 1 / t["sample"],
            "gflops": flops / t["train"] / 1e9,
            "memory": measure_memory(key, name),
        }
    result["rnngen"]["peak_share"] = result["rnngen"]["gflops"] / peak
    if cfg.softmax == "full":
        result["ceiling"] = product_ceiling(cfg, spec, rounds)
    return result


def class_quality(epochs: int, seeds: int, log) -> None:
    """rnngen's 1x256 rnn on War and Peace (the quality benchmark's split and vocabulary) with the
    full softmax, the class softmax, and the class softmax with lazy Adam on the embedding:
    test perplexity (and its ratio to the full softmax's) and training speed of each, as means
    over `seeds` trainings (seeds 0, 1, ...), since float32 rounding alone moves one training's
    result by a few percent."""
    from rnngen.reading.evaluate import evaluate
    from rnngen.text.corpus import read_text
    from rnngen.text.tokenize import TokenizerConfig, tokenize
    from rnngen.text.vocab import build_vocab
    from rnngen.training.train import TrainConfig, train

    # quality.py's split: tokens cut 90/5/5, the vocabulary from the train part's 10,000 words
    corpus = ROOT.parent / "shared" / "corpora" / "war_and_peace.txt"
    tokens = tokenize(read_text(str(corpus)), TokenizerConfig())
    a, b = int(len(tokens) * 0.90), int(len(tokens) * 0.95)
    vocab = build_vocab(tokens[:a], TokenizerConfig().specials, max_size=10_000)
    train_ids, val_ids, test_ids = (vocab.encode(p) for p in (tokens[:a], tokens[a:b], tokens[b:]))
    rows = []
    for name, softmax, lazy in (("full", "full", False), ("class", "class", False),
                                ("class, lazy Adam", "class", True)):  # fmt: skip
        bounds = make_class_bounds(vocab.counts) if softmax == "class" else ()
        cfg = M.ModelConfig(len(vocab), embed=256, hidden=256, dropout=0.0, softmax=softmax,
                            class_bounds=bounds)  # fmt: skip
        ppls, speeds, walls = [], [], []
        for seed in range(seeds):
            tc = TrainConfig(epochs=epochs, batch_size=20, seq_len=20, patience=0,
                             lazy_adam=lazy, seed=seed)  # fmt: skip
            began = time.perf_counter()
            result = train(train_ids, cfg, tc, val_ids=val_ids)
            walls.append(time.perf_counter() - began)
            ppls.append(evaluate(result.params, cfg, test_ids).perplexity)
            speeds.append(result.history["tokens_per_second"])
            log(f"  {name}, seed {seed}: test ppl {ppls[-1]:.2f}, {walls[-1]:.0f} s")
        rows.append((name, ppls, float(np.mean(speeds)), float(np.mean(walls))))
    print(f"{epochs} epochs; means over seeds 0 to {seeds - 1}\n")
    print("| softmax | test perplexity | each seed | vs full | train tokens/s | wall s |")
    print("|---|---:|---|---:|---:|---:|")
    full = float(np.mean(rows[0][1]))
    for name, ppls, tps, wall in rows:
        each = ", ".join(f"{p:.2f}" for p in ppls)
        print(f"| {name} | {np.mean(ppls):.2f} | {each} | {np.mean(ppls) / full:.3f} | "
              f"{tps:,.0f} | {wall:.0f} |")  # fmt: skip


SAMPLER_CHAINS = {
    "default": SamplerSettings(),
    "--top-p 0.9 --repeat-penalty 1.1": SamplerSettings(top_p=0.9, repeat_penalty=1.1),
    "--top-k 40": SamplerSettings(top_k=40),
    "--temperature 0.8": SamplerSettings(temperature=0.8),
}


def sampling_speed(names, rounds: int, log) -> None:
    """rnngen's sampling speed (100 tokens from a one-token start, median over rounds) under
    several sampler settings, the configurations interleaved round by round; then the class
    softmax's speed over the full softmax's on c. The models are freshly initialised, so their
    distributions are nearly flat: for the class softmax, the worst case of the options that
    need more than one class (top-p, top-k, the repeat penalty)."""
    runners = {}
    for name in names:
        spec = CONFIGS[name]
        runners[name] = RnngenRunner(model_config(spec), spec)
        for settings in SAMPLER_CHAINS.values():
            runners[name].sample(10, settings)  # warm-up
    times = {(n, label): [] for n in names for label in SAMPLER_CHAINS}
    for r in range(rounds):
        for name, runner in runners.items():
            for label, settings in SAMPLER_CHAINS.items():
                times[name, label].append(median_time(runner.sample, 100, settings) / 100)
        log(f"  sampling round {r + 1}/{rounds}")
    speed = {key: 1 / float(np.median(t)) for key, t in times.items()}
    print("| config | sampler settings | sample tok/s |")
    print("|---|---|---:|")
    for (name, label), value in speed.items():
        print(f"| {name} | {label} | {value:,.0f} |")
    if "c" in names and "c-class" in names:
        print()
        for label in SAMPLER_CHAINS:
            ratio = speed["c-class", label] / speed["c", label]
            print(f"class softmax on c, sampling ({label}): {ratio:.1f}x the full softmax's")


READING_SPEC = dict(cell="rnn", layers=1, hidden=256, embed=256)


def reading_model(softmax: str):
    """A model (random weights, gradient statistics) with peter_pan.txt's vocabulary, as `rnngen
    train` would configure it (the tokenizer's defaults), and the text to read."""
    from rnngen import api
    from rnngen.core.model import split_output
    from rnngen.files.storage import TrainedModel
    from rnngen.training.stats import gradient_stats

    path = ROOT / "corpora" / "peter_pan.txt"
    corpus = api.training_corpus(str(path))
    cfg = api.model_config(corpus.vocab, softmax=softmax, **READING_SPEC)
    params = M.init_params(cfg, np.random.default_rng(0), np.float32)
    stats = gradient_stats(params, cfg, np.asarray(corpus.ids[:20_000]))
    model = TrainedModel(cfg, corpus.tokenizer, corpus.vocab, split_output(params), {},
                         split_output(stats))  # fmt: skip
    return model, path.read_text(encoding="utf-8")


def reading_cases() -> dict:
    """The reading commands through the API (as the CLI calls it), by name -> a function that
    runs one and returns the tokens it scored or generated: `eval` of 40,000 characters,
    static, and of 8,000 with --cache --dynamic; `score` of 1,000 lines, static and with
    --cache; `sample` of 200 tokens from a one-word start, with the full and the class softmax.
    The names it calls exist before and after the reader, so two trees can be compared."""
    from rnngen import api
    from rnngen.reading.settings import Adaptation, CacheSettings, DynamicSettings

    full, text = reading_model("full")
    cls, _ = reading_model("class")
    held, short = text[100_000:140_000], text[100_000:108_000]
    lines = [line for line in text[:200_000].splitlines() if line.strip()][:1000]
    on_device = getattr(api, "device_arrays", None) or api._device_params_of  # before the reader
    both = Adaptation(CacheSettings(), DynamicSettings(), on_device(full.stats))
    cache = Adaptation(CacheSettings())

    def eval_static():
        return api.evaluate_text(full, held).result.tokens

    def eval_adapted():
        if hasattr(api, "evaluate_adapted"):  # before the reader
            return api.evaluate_adapted(full, short, both).adapted.tokens
        return api.evaluate_text(full, short, adaptation=both).adapted.result.tokens

    def score(adaptation):
        def run():
            if adaptation is None:
                scored = api.score_lines(full, lines)
            elif hasattr(api, "score_lines_cached"):  # before the reader
                scored = api.score_lines_cached(full, lines, adaptation.cache)
            else:
                scored = api.score_lines(full, lines, adaptation=adaptation)
            return sum(s.tokens for _, s in scored)

        return run

    def sample(model):
        def run():
            api.sample_text(model, "the", 200, np.random.default_rng(0))
            return 200

        return run

    return {
        "eval": eval_static,
        "eval --cache --dynamic": eval_adapted,
        "score": score(None),
        "score --cache": score(cache),
        "sample (full softmax)": sample(full),
        "sample (class softmax)": sample(cls),
    }


def reading_child() -> None:
    """Serve reading_cases to another tree's speed.py: a case name per line on stdin, its
    tokens and seconds back on stdout."""
    cases = reading_cases()
    print("ready", flush=True)
    for line in sys.stdin:
        run = cases[line.strip()]
        began = time.perf_counter()
        tokens = run()
        print(f"{tokens} {time.perf_counter() - began}", flush=True)


def reading_speed(rounds: int, log, against: str | None = None) -> None:
    """Tokens per second of each reading case (median over rounds, after a warm-up). With
    `against`, another rnngen tree (its benchmarks/speed.py must have --reading-child): its
    cases run in a child process interleaved with this tree's, case by case and round by round,
    so both see the same machine load, and the table gives this tree's speed over that one's."""
    cases = reading_cases()
    other = None
    if against is not None:
        script = Path(against) / "benchmarks" / "speed.py"
        other = subprocess.Popen([sys.executable, str(script), "--reading-child"], text=True,
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE)  # fmt: skip
        assert other.stdout.readline().strip() == "ready"

    def theirs(name):
        other.stdin.write(name + "\n")
        other.stdin.flush()
        tokens, seconds = other.stdout.readline().split()
        return int(tokens), float(seconds)

    times = {name: ([], []) for name in cases}
    tokens = {}
    for name, run in cases.items():  # warm-up
        tokens[name] = run()
        if other is not None:
            theirs(name)
    for r in range(rounds):
        for name, run in cases.items():
            times[name][0].append(median_time(run))
            if other is not None:
                times[name][1].append(theirs(name)[1])
        log(f"  reading round {r + 1}/{rounds}")
    if other is not None:
        other.stdin.close()
        other.wait()
    print("| command | tokens | tok/s | other tree tok/s | ratio |")
    print("|---|---:|---:|---:|---:|")
    for name in cases:
        ours = tokens[name] / np.median(times[name][0])
        if other is None:
            print(f"| {name} | {tokens[name]:,} | {ours:,.0f} | | |")
            continue
        them = tokens[name] / np.median(times[name][1])
        print(f"| {name} | {tokens[name]:,} | {ours:,.0f} | {them:,.0f} | {ours / them:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default="a,b,c,c-class,c-class-lazy")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=3, help="training steps per round")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--class-quality", action="store_true")
    parser.add_argument(
        "--sampling", action="store_true", help="sampling speed only, under several settings"
    )
    parser.add_argument(
        "--reading", action="store_true", help="eval, score and sample through the API only"
    )
    parser.add_argument("--against", help="--reading: another rnngen tree, timed interleaved")
    parser.add_argument("--reading-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=3, help="trainings per softmax (quality)")
    parser.add_argument("--memory-child", nargs=2, metavar=("IMPL", "CONFIG"))
    args = parser.parse_args()
    if args.memory_child:
        memory_child(*args.memory_child)
        return

    def log(message):
        print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    if args.class_quality:
        class_quality(args.epochs, args.seeds, log)
        return
    if args.sampling:
        sampling_speed(args.configs.split(","), args.rounds, log)
        return
    if args.reading_child:
        reading_child()
        return
    if args.reading:
        reading_speed(args.rounds, log, args.against)
        return
    peak = gemm_peak(args.rounds)
    log(f"float32 matrix-product peak: {peak:.0f} GFLOP/s, {THREADS} threads")
    results = [bench(name, args.rounds, args.steps, peak, log) for name in args.configs.split(",")]
    peak = max(peak, gemm_peak(args.rounds))  # measured again after, the better of the two
    print(f"{THREADS} threads; float32 matrix-product peak {peak:.0f} GFLOP/s (2048^3, best of "
          f"{max(args.rounds, 3)} before and after)\n")  # fmt: skip
    print(
        "| config | impl | train tok/s | ratio | eval tok/s | ratio | sample tok/s | ratio | "
        "GFLOP/s | share of peak | peak RSS MB | added by training MB |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    worst = None
    for r in results:
        ours = r["rnngen"]
        theirs = r.get("torch")
        for key in ("rnngen", "torch"):
            if key not in r:
                continue
            v = r[key]

            def ratio(field, v=v, theirs=theirs, key=key):
                return f"{v[field] / theirs[field]:.2f}" if theirs and key == "rnngen" else ""

            share = f"{v['gflops'] / peak:.0%}"
            print(f"| {r['name']} | {key} | {v['train']:,.0f} | {ratio('train')} | "
                  f"{v['eval']:,.0f} | {ratio('eval')} | {v['sample']:,.0f} | {ratio('sample')} | "
                  f"{v['gflops']:.0f} | {share} | {v['memory']['peak'] / 1e6:.0f} | "
                  f"{v['memory']['added'] / 1e6:.0f} |")  # fmt: skip
        if theirs:
            worst = min(worst or 1e9, ours["train"] / theirs["train"])
    ceilings = [r for r in results if "ceiling" in r]
    if ceilings:
        print("\nThe step's matrix products timed alone at each configuration's shapes (the most "
              "any implementation built from them can reach):\n")  # fmt: skip
        print("| config | products alone GFLOP/s | share of peak | rnngen share of that |")
        print("|---|---:|---:|---:|")
        for r in ceilings:
            print(f"| {r['name']} | {r['ceiling']:.0f} | {r['ceiling'] / peak:.0%} | "
                  f"{r['rnngen']['gflops'] / r['ceiling']:.0%} |")  # fmt: skip
    found = {r["name"]: r["rnngen"]["train"] for r in results}
    if "c" in found:
        print()
        for name, how in (
            ("c-class", "Adam, as `rnngen train --softmax class`"),
            ("c-class-lazy", "lazy Adam on the embedding, --sparse-embedding"),
        ):
            if name in found:
                print(f"class softmax on c ({how}): {found[name] / found['c']:.1f}x the full "
                      "softmax's training speed")  # fmt: skip
        sampled = {r["name"]: r["rnngen"]["sample"] for r in results}
        if "c-class" in sampled:
            print(f"class softmax on c: {sampled['c-class'] / sampled['c']:.1f}x the full "
                  "softmax's sampling speed (default sampler settings)")  # fmt: skip
    if worst is not None:
        print(f"\nworst train speed ratio: {worst:.2f}")


if __name__ == "__main__":
    main()
