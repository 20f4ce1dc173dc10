"""Daily use: streaming samples, `score`, `info`, `--json`, the training log and `plot`, through
Typer's CliRunner and real pipes."""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from rnngen import api, backend
from rnngen.cli import app
from rnngen.evaluate import score_sequences
from rnngen.model import ModelConfig, init_params, init_state, join_output, sequence_nll
from rnngen.storage import TrainedModel, load_model, save_model
from rnngen.tokenize import (
    EOS,
    StreamDetokenizer,
    TokenizerConfig,
    detokenize,
    stream_detokenize,
    tokenize,
)
from rnngen.vocab import build_vocab

runner = CliRunner()
TINY = ["--epochs", "2", "--hidden", "16", "--embed", "8", "--batch-size", "4", "--seq-len", "8"]
MODES = {
    "book": [],
    "whitespace": ["--tokenizer", "whitespace"],
    "char": ["--level", "char"],
}


def rnngen_cmd(*args) -> list:
    return [sys.executable, "-m", "rnngen", *args]


@pytest.fixture(scope="module")
def text_file(tmp_path_factory):
    from conftest import write_excerpt

    path = tmp_path_factory.mktemp("pipes") / "book.txt"
    write_excerpt(path, 8000)
    return path


@pytest.fixture(scope="module")
def models(text_file):
    """One tiny model per tokenizer mode, and the training log of the book model."""
    paths = {}
    log = text_file.parent / "run.jsonl"
    for mode, options in MODES.items():
        out = text_file.parent / f"{mode}.npz"
        extra = ["--log-file", str(log)] if mode == "book" else []
        result = runner.invoke(
            app, ["train", str(text_file), "-o", str(out), "-q", *TINY, *options, *extra]
        )
        assert result.exit_code == 0, result.stderr
        paths[mode] = out
    paths["log"] = log
    return paths


def start_for(mode: str) -> str:
    return "Wen" if mode == "char" else "Wendy"


# --- streaming ----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", list(MODES))
def test_streamed_sample_equals_buffered_for_many_seeds(models, mode):
    model = load_model(models[mode])
    for seed in range(25):
        for start in (start_for(mode), None):
            pieces = list(api.sample_pieces(model, start, 60, np.random.default_rng(seed)))
            buffered = api.sample_text(model, start, 60, np.random.default_rng(seed))
            assert "".join(pieces) == buffered, (mode, seed, start)
            assert len(pieces) > 30  # a piece per token or so, not one lump at the end


@pytest.mark.parametrize("mode", list(MODES))
def test_cli_stream_and_no_stream_print_the_same(models, mode):
    for seed in (1, 2, 3):
        args = ["sample", "-m", str(models[mode]), "--length", "80", "--seed", str(seed)]
        streamed = runner.invoke(app, [*args, "--count", "2"])
        buffered = runner.invoke(app, [*args, "--count", "2", "--no-stream"])
        assert streamed.exit_code == 0 and buffered.exit_code == 0, streamed.stderr
        assert streamed.stdout == buffered.stdout and streamed.stderr == ""


QUOTEY = ['"', "'", "“", "”", "‘", "’", ".", ",", ":", "3", "12", "a", "boys", "Peter", "-", "/",
          "(", ")", "\n", "\n\n", "!", "?", EOS, "6", "…", "said", "it's"]  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(
    tokens=st.lists(st.sampled_from(QUOTEY), max_size=25),
    config=st.sampled_from(
        [TokenizerConfig(), TokenizerConfig(scheme="whitespace"), TokenizerConfig(level="char")]
    ),
)
def test_stream_detokenizer_matches_detokenize(tokens, config):
    assert "".join(stream_detokenize(tokens, config)) == detokenize(tokens, config)
    stream, written = StreamDetokenizer(config), ""
    for i, token in enumerate(tokens):
        written += stream.push(token)
        # at most one token is held back: what is out is final
        assert detokenize(tokens, config).startswith(written)
        # (the held token's space may still change with its right neighbour)
        assert len(written) >= len(detokenize(tokens[:i], config)) - 1


def test_stream_detokenizer_on_a_whole_book_is_exact_and_linear(book_text):
    from conftest import REPO

    text = (REPO / "corpora" / "peter_pan.txt").read_text(encoding="utf-8")
    tokens = tokenize(text, TokenizerConfig())  # 60,000 tokens: a quadratic join would crawl
    assert "".join(stream_detokenize(tokens, TokenizerConfig())) == detokenize(
        tokens, TokenizerConfig()
    )


def test_sample_streams_before_it_finishes(models):
    """Text reaches a pipe while generation is still going on."""
    proc = subprocess.Popen(
        rnngen_cmd("sample", "-m", str(models["book"]), "--length", "10000000", "--seed", "1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        first = os.read(proc.stdout.fileno(), 64)
        assert first and proc.poll() is None  # output came, and the process is still running
    finally:
        proc.kill()
        proc.communicate()


def test_sample_count_separates_samples_by_a_blank_line(models):
    args = ["sample", "-m", str(models["whitespace"]), "--start", "Wendy", "--seed", "4"]
    one = runner.invoke(app, [*args, "--length", "5"])
    three = runner.invoke(app, [*args, "--length", "5", "--count", "3"])
    assert three.exit_code == 0
    samples = three.stdout.split("\n\n")
    assert len(samples) == 3 and all(s.startswith("Wendy") for s in samples)
    assert three.stdout.startswith(one.stdout)  # the first sample is the one --count 1 prints
    assert runner.invoke(app, [*args, "--count", "0"]).exit_code == 2


def test_sample_start_dash_reads_stdin(models):
    args = ["sample", "-m", str(models["book"]), "--length", "3", "--seed", "0"]
    result = runner.invoke(app, [*args, "--start", "-"], input="the Darling\n")
    assert result.exit_code == 0 and result.stdout.startswith("the Darling")


def test_model_from_stdin(models):
    data = models["book"].read_bytes()
    result = runner.invoke(
        app, ["sample", "-m", "-", "--start", "Wendy", "--length", "5", "--seed", "0"], input=data
    )
    assert result.exit_code == 0 and result.stdout.startswith("Wendy")
    both = runner.invoke(app, ["eval", "-", "-m", "-"], input=data)
    assert both.exit_code == 2 and "standard input" in both.stderr


# --- score --------------------------------------------------------------------------------------


def rows(stdout: str) -> list:
    return [line.split("\t") for line in stdout.splitlines()]


def test_score_prints_one_row_per_line(models, text_file):
    lines = ["Wendy said that the boys were lost.", "", "zyzzyva Peter", "the", "   "]
    result = runner.invoke(
        app, ["score", "-", "-m", str(models["book"])], input="\n".join(lines) + "\n"
    )
    assert result.exit_code == 0 and result.stderr == ""
    table = rows(result.stdout)
    assert len(table) == len(lines) and all(len(r) == 3 for r in table)
    assert table[1] == ["0.000000", "0", "nan"] and table[4] == ["0.000000", "0", "nan"]
    logprob, tokens, ppl = float(table[0][0]), int(table[0][1]), float(table[0][2])
    assert tokens == 8 and logprob < 0  # book tokenizing: the line's end is not scored
    assert ppl == pytest.approx(math.exp(-logprob / tokens), rel=1e-4)
    from_file = runner.invoke(app, ["score", str(text_file), "-m", str(models["book"])])
    assert len(from_file.stdout.splitlines()) == len(text_file.read_text().splitlines())


def test_score_token_counts_per_tokenizer(models):
    expected = {"book": 3, "whitespace": 4, "char": 10}  # whitespace scores <eos>
    for mode, count in expected.items():
        result = runner.invoke(
            app, ["score", "-", "-m", str(models[mode]), "--with-text"], input="the boys .\n"
        )
        [(logprob, tokens, perplexity, line)] = rows(result.stdout)
        assert (tokens, line) == (str(count), "the boys .") and float(logprob) < 0


@pytest.mark.parametrize("mode", list(MODES))
def test_score_equals_a_one_line_forward_and_eval(models, mode):
    model = load_model(models[mode])
    params = join_output({k: backend.xp.asarray(v) for k, v in model.params.items()})
    lines = ["Wendy said that the boys were lost.", "the", "Peter and Wendy and the Darling"]
    lines += ["the boys " * k for k in range(1, 6)]
    scored = [s for _, s in api.score_lines(model, lines)]
    for line, result in zip(lines, scored, strict=True):
        ids = model.vocab.encode(api.line_tokens(model, line))
        inputs = np.concatenate([[api.line_context_id(model)], ids[:-1]]).astype(np.int32)
        nll, _ = sequence_nll(
            params, model.config, inputs[:, None], ids[:, None], init_state(model.config, 1)
        )
        assert result.tokens == len(ids)
        assert result.nll == pytest.approx(float(nll), rel=1e-4)
        # the same as `eval` of the line after its context token (a paragraph break, or <eos>)
        context = model.vocab.tokens[api.line_context_id(model)]
        assert context == {"book": "\n\n", "whitespace": "<eos>", "char": "\n"}[mode]
        text = ("\n" + line + "\n") if mode == "whitespace" else context + line
        report = api.evaluate_text(model, text).result
        assert report.tokens == result.tokens
        assert report.nll == pytest.approx(result.nll, rel=1e-4)


def test_score_batching_does_not_change_scores():
    rng = np.random.default_rng(0)
    cfg = ModelConfig(vocab_size=11, embed=4, hidden=5, cell="lstm", layers=2)
    params = init_params(cfg, rng, np.float64)
    sequences = []
    for length in [0, 3, 1, 7, 3, 5, 2, 7, 0, 4]:
        ids = rng.integers(0, 11, size=length).astype(np.int32)
        sequences.append((np.concatenate([[1], ids[:-1]]).astype(np.int32) if length else ids, ids))
    one_by_one = score_sequences(params, cfg, sequences, batch=1)
    batched = score_sequences(params, cfg, sequences, batch=4)
    assert np.allclose(one_by_one, batched, rtol=1e-12)
    for (inputs, targets), value in zip(sequences, batched, strict=True):
        if len(inputs):
            nll, _ = sequence_nll(
                params, cfg, inputs[:, None], targets[:, None], init_state(cfg, 1, np.float64)
            )
            assert value == pytest.approx(nll, rel=1e-10)
        else:
            assert value == 0


def test_score_errors_and_empty_input(models, tmp_path):
    model = str(models["book"])
    empty = runner.invoke(app, ["score", "-", "-m", model], input="")
    assert empty.exit_code == 0 and empty.stdout == "" and empty.stderr == ""
    missing = runner.invoke(app, ["score", str(tmp_path / "none.txt"), "-m", model])
    assert missing.exit_code == 66 and "does not exist" in missing.stderr
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine line\ncaf\xe9\n")
    result = runner.invoke(app, ["score", str(bad), "-m", model])
    assert result.exit_code == 65 and "line 2 is not valid UTF-8" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_sample_into_score_pipeline(models):
    """The README's pipeline, through a real shell pipe."""
    model = str(models["book"])
    sample = " ".join(rnngen_cmd("sample", "-m", model, "--start", "Wendy", "--length", "100"))
    score = " ".join(rnngen_cmd("score", "-m", model, "-"))
    proc = subprocess.run(
        ["bash", "-o", "pipefail", "-c", f"{sample} --seed 1 | {score}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    table = rows(proc.stdout)
    assert table and all(len(r) == 3 and float(r[0]) <= 0 for r in table)


# --- info and --json ----------------------------------------------------------------------------


def test_info_human_and_json(models):
    path = str(models["book"])
    model = load_model(path)
    text = runner.invoke(app, ["info", path])
    assert text.exit_code == 0 and text.stderr == ""
    for fragment in ("rnn, 1 layer", "embedding 8, hidden 16", "version 1", "validation",
                     "unigram baseline", f"{len(model.vocab):,} tokens", "book rules"):  # fmt: skip
        assert fragment in text.stdout
    as_json = runner.invoke(app, ["info", path, "--json", "--top", "3"])
    facts = json.loads(as_json.stdout)  # exactly one JSON object
    assert facts["model"]["cell"] == "rnn" and facts["model"]["hidden"] == 16
    assert facts["parameters"] == sum(p.size for p in model.params.values())
    assert facts["vocabulary"]["top"] == list(model.vocab.tokens[1:4])
    assert facts["version"] == 1 and facts["format"] == "rnngen-model"
    assert facts["history"]["epochs"] == 2 and facts["history"]["best_val_ppl"] > 1
    settings = {"level": "word", "scheme": "book", "lowercase": False, "lines": "auto"}
    assert {k: facts["tokenizer"][k] for k in settings} == settings
    assert set(facts["tokenizer"]) == {*settings, "attach", "elisions", "pairs", "rules"}
    assert facts["tokenizer"]["rules"] == 2  # the tokenizer rules new files are made with
    assert facts["tokenizer"]["attach"][","] == "left"  # learned from the text
    from_stdin = runner.invoke(app, ["info", "-", "--json"], input=models["book"].read_bytes())
    assert json.loads(from_stdin.stdout)["parameters"] == facts["parameters"]
    verbose = runner.invoke(app, ["info", path, "-v"])
    assert "train loss" in verbose.stdout  # the per-epoch table


def test_info_of_a_model_without_history(tmp_path):
    vocab = build_vocab("a b c a b a".split())
    cfg = ModelConfig(len(vocab), embed=3, hidden=4, softmax="class", class_bounds=(0, 2, 4))
    path = tmp_path / "bare.npz"
    params = init_params(cfg, np.random.default_rng(0))
    save_model(path, TrainedModel(cfg, TokenizerConfig(), vocab, params, {}))
    result = runner.invoke(app, ["info", str(path)])
    assert result.exit_code == 0 and "no history" in result.stdout and "2 classes" in result.stdout
    assert json.loads(runner.invoke(app, ["info", str(path), "--json"]).stdout)["history"][
        "epochs"] == 0  # fmt: skip


def test_train_json_is_one_object_on_stdout(text_file, tmp_path):
    out = tmp_path / "m.npz"
    result = runner.invoke(app, ["train", str(text_file), "-o", str(out), "--json", *TINY])
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["model"] == str(out) and summary["epochs"] == 2
    assert {"best_val_ppl", "unigram_val_ppl", "seconds", "tokens_per_second"} <= set(summary)
    assert "epoch   2/2" in result.stderr  # progress still on stderr
    quiet = runner.invoke(app, ["train", str(text_file), "-o", str(out), "--json", "-q", *TINY])
    assert quiet.stderr == "" and json.loads(quiet.stdout)["epochs"] == 2


def test_eval_json_is_one_object(models, text_file):
    result = runner.invoke(app, ["eval", str(text_file), "-m", str(models["char"]), "--json"])
    assert result.exit_code == 0 and result.stderr == ""
    assert set(json.loads(result.stdout)) == {
        "tokens", "oov_rate", "cross_entropy", "bits_per_token", "perplexity", "characters",
        "bits_per_character"}  # fmt: skip


# --- training log and plot ----------------------------------------------------------------------


def read_jsonl(path) -> list:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_log_file_records_steps_and_evaluations(models):
    records = read_jsonl(models["log"])
    start = records[0]
    assert start["event"] == "start" and start["steps_per_epoch"] > 0 and start["lr"] == 0.002
    steps = [r for r in records if r["event"] == "step"]
    evals = [r for r in records if r["event"] == "eval"]
    assert len(evals) == 2 and steps
    fields = {"step", "epoch", "loss", "perplexity", "val_perplexity", "lr", "tokens_per_second",
              "elapsed"}  # fmt: skip
    assert all(fields <= set(r) for r in steps + evals)
    assert [r["step"] for r in steps] == sorted(r["step"] for r in steps)
    assert evals[-1]["step"] == 2 * start["steps_per_epoch"]
    assert evals[0]["val_perplexity"] == pytest.approx(math.exp(evals[0]["val_loss"]))
    assert len({r["run"] for r in records}) == 1


def test_log_file_appends_and_plot_picks_a_run(text_file, tmp_path):
    log = tmp_path / "run.jsonl"
    for seed in ("1", "2"):
        args = ["train", str(text_file), "-o", str(tmp_path / "m.npz"), "-q", *TINY]
        result = runner.invoke(app, [*args, "--seed", seed, "--log-file", str(log), "--lr", "0.01"])
        assert result.exit_code == 0, result.stderr
    records = read_jsonl(log)
    runs = list(dict.fromkeys(r["run"] for r in records))
    assert len(runs) == 2 and sum(r["event"] == "start" for r in records) == 2
    assert all(r["lr"] == 0.01 for r in records if r["event"] != "start")
    first = runner.invoke(app, ["plot", str(log), "--run", "1"])
    last = runner.invoke(app, ["plot", str(log)])
    assert first.exit_code == 0 and runs[0] in first.stdout and runs[1] in last.stdout
    assert runner.invoke(app, ["plot", str(log), "--run", "3"]).exit_code == 2


def test_plot_draws_a_plain_chart_within_80_columns(models):
    result = runner.invoke(app, ["plot", str(models["log"])])
    assert result.exit_code == 0 and result.stderr == ""
    lines = result.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines)
    assert "\x1b[" not in result.stdout  # off a terminal: plain characters
    body = "\n".join(lines[1:17])  # the title, then 16 rows of plotting area
    assert "*" in body and "o" in body  # training and validation points
    assert "training loss" in result.stdout and "validation loss" in result.stdout
    narrow = runner.invoke(app, ["plot", str(models["log"]), "--width", "40", "--height", "6"])
    assert all(len(line) <= 40 for line in narrow.stdout.splitlines())
    piped = runner.invoke(app, ["plot", "-"], input=models["log"].read_text())
    assert piped.stdout == result.stdout


def test_plot_bad_logs(tmp_path):
    missing = runner.invoke(app, ["plot", str(tmp_path / "none.jsonl")])
    assert missing.exit_code == 66
    junk = tmp_path / "junk.jsonl"
    junk.write_text("not json\n[1, 2]\n")
    result = runner.invoke(app, ["plot", str(junk)])
    assert result.exit_code == 65 and "no training records" in result.stderr


def test_plot_skips_a_cut_short_line_with_a_warning(models, tmp_path):
    log = tmp_path / "cut.jsonl"
    log.write_text(models["log"].read_text() + '{"run": "x", "event": "st')
    result = runner.invoke(app, ["plot", str(log)])
    assert result.exit_code == 0 and "skipped 1 line" in result.stderr
    assert runner.invoke(app, ["plot", str(log), "-q"]).stderr == ""


def test_plot_png_without_matplotlib(models, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if not installed
    out = tmp_path / "curves.png"
    result = runner.invoke(app, ["plot", str(models["log"]), "--png", str(out)])
    assert result.exit_code == 69 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install 'rnngen[plot]'" in lines[0]
    assert not out.exists()


def test_plot_png_with_matplotlib(models, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "curves.png"
    result = runner.invoke(app, ["plot", str(models["log"]), "--png", str(out)])
    assert result.exit_code == 0 and result.stdout == ""
    assert out.read_bytes().startswith(b"\x89PNG")


def run_on_pty(args, env_extra) -> bytes:
    """Run rnngen with stdout on a pseudo-terminal; return what it wrote there."""
    import pty

    leader, follower = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "TERM")}
    env.update(env_extra)
    proc = subprocess.Popen(rnngen_cmd(*args), stdout=follower, stderr=subprocess.PIPE, env=env)
    os.close(follower)
    output = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the other side closed
            break
        if not chunk:
            break
        output += chunk
    proc.wait(timeout=60)
    os.close(leader)
    assert proc.returncode == 0
    return output


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_plot_colour_on_a_terminal_only_without_no_color_or_dumb_term(models):
    args = ("plot", str(models["log"]))
    assert b"\x1b[" in run_on_pty(args, {"TERM": "xterm-256color"})
    assert b"\x1b[" not in run_on_pty(args, {"TERM": "xterm-256color", "NO_COLOR": "1"})
    assert b"\x1b[" not in run_on_pty(args, {"TERM": "dumb"})


# --- layout -------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", list(MODES))
def test_cli_width_wraps_and_streams_the_same_bytes(models, mode):
    for seed in (1, 2):
        args = ["sample", "-m", str(models[mode]), "--length", "120", "--seed", str(seed)]
        for width in ([], ["--width", "30"], ["--width", "0"]):
            streamed = runner.invoke(app, [*args, *width, "--count", "2"])
            buffered = runner.invoke(app, [*args, *width, "--count", "2", "--no-stream"])
            assert streamed.exit_code == 0, streamed.stderr
            assert streamed.stdout == buffered.stdout
        plain = runner.invoke(app, args).stdout
        wrapped = runner.invoke(app, [*args, "--width", "30"]).stdout
        for line in wrapped.splitlines():
            assert len(line) <= 30 or " " not in line
        # wrapping only turns spaces into line breaks
        assert wrapped.replace("\n", " ").split() == plain.replace("\n", " ").split()
        assert runner.invoke(app, [*args, "--width", "0"]).stdout == plain


# --- bits per character -------------------------------------------------------------------------


def test_char_model_bits_per_character_equal_its_bits_per_token(models, text_file):
    model = load_model(models["char"])
    text = text_file.read_text(encoding="utf-8")[:3000]
    report = api.evaluate_text(model, text).to_dict()
    assert report["characters"] == report["tokens"] == len(text.replace("\r\n", "\n")) - 1
    assert report["bits_per_character"] == pytest.approx(report["bits_per_token"], rel=1e-12)


def test_bits_per_character_count_the_normalised_text_after_the_first_token():
    book, spaced = TokenizerConfig(), TokenizerConfig(scheme="whitespace")
    text = "  Wendy   said.\n\n\n\nPeter  laughed. "
    # normalised: "Wendy said.\n\nPeter laughed." (27 characters), less "Wendy"
    assert api.scored_characters(text, tokenize(text, book), book) == 27 - 5
    text = "a  b\n\nc d\n"  # "a b" <eos> "" <eos> "c d" <eos>: 3 + 1 + 0 + 1 + 3 + 1, less "a"
    assert api.scored_characters(text, tokenize(text, spaced), spaced) == 9 - 1
    chars = TokenizerConfig(level="char")
    assert api.scored_characters("ab\r\nc", tokenize("ab\r\nc", chars), chars) == 3


def test_eval_reports_bits_per_character(models, text_file):
    for mode in MODES:
        result = runner.invoke(app, ["eval", str(text_file), "-m", str(models[mode]), "--json"])
        values = json.loads(result.stdout)
        bits = values["cross_entropy"] * values["tokens"] / math.log(2)
        assert values["bits_per_character"] == pytest.approx(bits / values["characters"])
        assert values["characters"] > values["tokens"] or mode == "char"
        plain = runner.invoke(app, ["eval", str(text_file), "-m", str(models[mode])]).stdout
        assert f"{values['bits_per_character']:.4f} bits/character" in plain
