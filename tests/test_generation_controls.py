"""Generation controls: DRY in the sampler chain (full and class softmax, greedy), start texts with
unknown words, and (through the CLI) stop conditions, JSON output and checkpoints as models."""

import json
import re

import numpy as np
import pytest
from conftest import write_excerpt
from test_sampling import class_setup, large_class_setup
from typer.testing import CliRunner

from rnngen import api
from rnngen.cli.app import app
from rnngen.errors import ConfigError, UnknownWordError
from rnngen.files.checkpoint import load_checkpoint
from rnngen.files.storage import save_model
from rnngen.reading import dry
from rnngen.reading import sampling as S
from rnngen.reading.continuation import (
    UNTIL_STOP_CAP,
    Generated,
    SampleLog,
    generation_limit,
    printed_pieces,
)
from rnngen.reading.stops import SENTENCE, parse_stop
from rnngen.text.start import read_start
from rnngen.text.tokenize import TokenizerConfig, detokenize, tokenize
from rnngen.text.vocab import build_vocab

HISTORY = [3, 7, 9, 3, 7, 9, 3, 7, 12, 3, 7]  # "3 7" repeats: 9 and 12 would extend it
DRY = S.SamplerSettings(dry_multiplier=1.5)


# --- DRY in the chain ---------------------------------------------------------------------------


def test_dry_comes_after_the_repeat_penalty_and_before_the_filters():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=20)
    settings = S.SamplerSettings(
        repeat_penalty=1.3, dry_multiplier=2.0, dry_sequence_breakers=(), top_k=3, temperature=0
    )
    expected = S.repeat_penalty(scores, S.recent_ids(HISTORY, settings), 1.3)
    ids, amounts = dry.penalties(HISTORY, 2.0, 1.75, 2, 1024)
    assert set(ids.tolist()) == {9, 12}
    expected = dry.apply(expected, ids, amounts)
    assert S.sample_token(scores, settings, HISTORY, rng) == int(np.argmax(expected))
    # the likeliest token, made the one that extends the repeat, is passed over
    scores[9] = scores.max() + 1.0
    plain = S.SamplerSettings(temperature=0)
    assert S.sample_token(scores, plain, HISTORY, rng) == 9
    greedy_dry = S.sampler_settings(True, dry_multiplier=5.0, dry_sequence_breakers=[])
    assert S.sample_token(scores, greedy_dry, HISTORY, rng) != 9


def test_greedy_takes_dry_options_and_refuses_the_others():
    settings = S.sampler_settings(True, dry_multiplier=0.8, dry_allowed_length=3)
    assert settings.greedy and settings.dries and settings.dry_allowed_length == 3
    with pytest.raises(ConfigError, match="so sampling.top_k would be ignored"):
        S.sampler_settings(True, top_k=3, dry_multiplier=0.8)
    with pytest.raises(ConfigError, match="sampling.dry_base must be a finite number at least 1"):
        S.SamplerSettings(dry_base=0.5)
    with pytest.raises(ConfigError, match="sampling.dry_allowed_length"):
        S.SamplerSettings(dry_allowed_length=0)


def test_breakers_are_bound_to_a_vocabulary():
    vocab = build_vocab(tokenize("A cat.\n\nA dog.", TokenizerConfig()))
    bound = S.bind(
        S.SamplerSettings(dry_multiplier=1.0, dry_sequence_breakers=("\n\n", "#")), vocab
    )
    assert bound.dry_breaker_ids == frozenset({vocab.id("\n\n")})  # "#" can never occur
    with pytest.raises(ValueError, match="bind"):
        unbound = S.SamplerSettings(dry_multiplier=1.0, dry_sequence_breakers=("\n\n",))
        S.sample_token(np.zeros(9), unbound, [1, 2, 1], None)


@pytest.mark.parametrize(
    "settings",
    [
        DRY,
        S.SamplerSettings(dry_multiplier=3.0, dry_allowed_length=1, dry_breaker_ids=frozenset({3})),
        S.SamplerSettings(dry_multiplier=1.0, temperature=0, dry_sequence_breakers=()),
        S.SamplerSettings(
            dry_multiplier=0.8, top_p=0.7, repeat_penalty=1.2, dry_sequence_breakers=()
        ),
        S.SamplerSettings(dry_multiplier=2.0, top_k=4, dry_last_n=6, dry_sequence_breakers=()),
    ],
)
def test_factored_sampler_with_dry_draws_the_full_samplers_token(settings):
    for seed in range(4):
        dist, _ = class_setup(seed) if seed < 2 else large_class_setup(seed)
        full = dist.full()
        history = [t % dist.bounds[-1] for t in HISTORY + [40, 3, 7, 9, 3, 7]]
        assert len(S.dry_penalties(history, settings)[0])  # DRY has something to do
        for draw_seed in range(60):
            a = S.sample_factored(dist, settings, history, np.random.default_rng(draw_seed))
            b = S.sample_token(full, settings, history, np.random.default_rng(draw_seed))
            assert a == b, (settings, seed, draw_seed)


# --- start texts with unknown words -------------------------------------------------------------

BOOK = TokenizerConfig()
TEXT = "The terrific storm made them terribly afraid; they were terrified.\n\n"


def test_unknown_words_are_left_out_where_unk_was_never_trained():
    vocab = build_vocab(tokenize(TEXT * 3, BOOK))
    start = read_start("The storm would terrify them; terrify", BOOK, vocab)
    assert start.unknown == ("would", "terrify")  # each once
    assert vocab.decode(start.ids) == ["The", "storm", "them", ";"]
    assert not start.as_unk
    assert start.tokens == ("The", "storm", "would", "terrify", "them", ";", "terrify")
    warning = start.warning(vocab)
    assert "'terrify' (closest known: terri" in warning and "left out" in warning
    assert warning.startswith("'would' (")
    with pytest.raises(UnknownWordError, match="'would' .*, 'terrify' .*are not in the model"):
        read_start("The storm would terrify them", BOOK, vocab, strict=True)


def test_unknown_words_are_read_as_unk_where_it_was_trained():
    vocab = build_vocab(tokenize(TEXT * 3 + "a rare word", BOOK), min_count=2)
    assert vocab.counts[0] > 0
    start = read_start("The storm would terrify them", BOOK, vocab)
    assert vocab.decode(start.ids) == ["The", "storm", "<unk>", "<unk>", "them"]
    assert start.as_unk and "read as <unk>" in start.warning(vocab)
    assert start.tokens == ("The", "storm", "would", "terrify", "them")


def test_a_start_text_of_unknown_words_only_is_refused():
    vocab = build_vocab(tokenize(TEXT, BOOK))
    with pytest.raises(UnknownWordError, match="no word of the start text"):
        read_start("xyzzy plugh", BOOK, vocab)
    one = read_start("storm", BOOK, vocab)
    assert one.unknown == () and one.warning(vocab) == ""


# --- the printed text: the start text as given, then the continuation, cut at a stop ------------


def records(tokens):
    return [Generated(i, t, -1.0 - i) for i, t in enumerate(tokens)]


def printed(start_text, start_tokens, generated, tokenizer=BOOK, stops=()):
    log = SampleLog()
    stops = [parse_stop(s) for s in stops]
    out = "".join(
        printed_pieces(start_text, start_tokens, records(generated), tokenizer, stops, log)
    )
    return out, log


GENERATED = ["said", "the", "captain", ".", "“", "Go", "!", "”", "\n\n", "He", "went", "."]


def test_the_start_text_is_echoed_as_typed_and_the_continuation_spaced_after_it():
    start = '"Oh,   games,"  said   Wendy'  # straight quotes, odd spaces: printed as they are
    tokens = ["“", "Oh", ",", "games", ",", "”", "said", "Wendy"]
    out, log = printed(start, tokens, GENERATED)
    full = detokenize(tokens + GENERATED, BOOK)
    assert out == start + full[len(detokenize(tokens, BOOK)) :]
    assert out.startswith(start + " said the captain. “Go!”\n\nHe went.")
    assert [g.token for g in log.tokens] == GENERATED and log.stop is None
    out, _ = printed("Wendy ", ["Wendy"], [",", "and", "then"])
    assert out == "Wendy , and then"  # the space typed stays...
    out, _ = printed("Wendy ", ["Wendy"], ["and", "then"])
    assert out == "Wendy and then"  # ...and no second space after a start text ending in one


def test_stops_cut_the_text_and_the_tokens_after_them():
    out, log = printed("The", ["The"], GENERATED, stops=[SENTENCE])
    assert out == "The said the captain."
    assert [g.token for g in log.tokens] == ["said", "the", "captain", "."]
    assert log.stop == parse_stop(SENTENCE)
    out, log = printed("The", ["The"], GENERATED, stops=["paragraph"])
    assert out == "The said the captain. “Go!”\n\n" and log.tokens[-1].token == "\n\n"
    out, log = printed("The", ["The"], GENERATED, stops=["capt"])
    assert out == "The said the capt" and log.tokens[-1].token == "captain"
    out, log = printed("The.", ["The", "."], GENERATED, stops=[SENTENCE])
    assert out == "The. said the captain."  # the start text's own sentence end does not count


def test_other_tokenizers_print_the_start_text_then_the_continuation():
    chars = TokenizerConfig(level="char")
    out, _ = printed("ab", ["a", "b"], ["c", " ", "d", "."], chars, stops=[SENTENCE])
    assert out == "abc d."
    words = TokenizerConfig(scheme="whitespace")
    out, log = printed("a b", ["a", "b"], ["c", "<eos>", "d"], words, stops=["\\n"])
    assert out == "a b c\n" and len(log.tokens) == 2


def test_until_a_stop_has_a_cap():
    assert generation_limit(0, [parse_stop(SENTENCE)]) == UNTIL_STOP_CAP == 100_000
    assert generation_limit(0, []) == 0 and generation_limit(30, [parse_stop("x")]) == 30


# --- through the command line -------------------------------------------------------------------

runner = CliRunner()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny model of the start of Peter Pan, and the checkpoint its training wrote."""
    folder = tmp_path_factory.mktemp("controls")
    book = write_excerpt(folder / "book.txt", 30000)
    out = folder / "m.npz"
    tiny = ["--epochs", "2", "--hidden", "16", "--batch-size", "4", "--seq-len", "10"]
    args = ["train", str(book), "-o", str(out), "-q", "--checkpoint-every", "50", *tiny]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.stderr
    return out, folder / "m.ckpt.npz"


def sample(model, *args):
    result = runner.invoke(app, ["sample", "-m", str(model), "--seed", "3", *args])
    return result


def test_cli_stops_at_the_first_sentence_end(trained):
    model, _ = trained
    for seed in range(3):
        result = sample(model, "--start", "Wendy said", "--length", "0", "--stop", "sentence",
                        "--seed", str(seed))  # fmt: skip
        assert result.exit_code == 0, result.stderr
        text = result.stdout.rstrip("\n")
        assert text.startswith("Wendy said") and text[-1] in ".!?”’\"')"
        end = re.search(r"[.!?…]+[”’\"')\]]*$", text)
        assert end and not re.search(r"[.!?][”’\"')\]]*\s+[A-Z]", text[: end.start()])


def test_cli_unknown_words_warn_once_and_sampling_goes_on(trained):
    model, _ = trained
    result = sample(model, "--start", "Wendy would terrify and stagger", "--length", "5")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("Wendy would terrify and stagger")
    warning = result.stderr.strip().splitlines()
    assert len(warning) == 1 and "'terrify' (closest known:" in warning[0]
    assert "'stagger'" in warning[0] and "left out" in warning[0]
    strict = sample(model, "--start", "Wendy would terrify", "--strict")
    assert strict.exit_code == 65 and "--strict" not in strict.stderr


def test_cli_samples_from_a_checkpoint(trained, tmp_path):
    _, ckpt = trained
    result = sample(ckpt, "--start", "Wendy", "--length", "20")
    assert result.exit_code == 0, result.stderr
    as_model = tmp_path / "from-ckpt.npz"
    save_model(as_model, api.model_of_checkpoint(load_checkpoint(ckpt)))
    assert sample(as_model, "--start", "Wendy", "--length", "20").stdout == result.stdout
    other = tmp_path / "other.npz"
    np.savez(other, meta=np.array("{}"))
    bad = sample(other)
    assert bad.exit_code != 0 and "expected 'rnngen-model'" in bad.stderr


def test_cli_length_0_needs_a_stop_and_stops_stream(trained):
    model, _ = trained
    result = sample(model, "--length", "0")
    assert result.exit_code == 2 and "--stop" in result.stderr
    vocab_model = api.load_model(model)
    pieces = list(api.sample_pieces(vocab_model, "Wendy", 0, np.random.default_rng(1),
                                    stops=[parse_stop("paragraph")]))  # fmt: skip
    assert len(pieces) > 3  # given out as generated, not at the end
    assert "".join(pieces).endswith("\n\n") and "\n\n" not in "".join(pieces)[:-2]


def test_cli_score_json_lines_match_the_columns(trained, tmp_path):
    model, _ = trained
    lines = tmp_path / "lines.txt"
    lines.write_text("Wendy said nothing.\n\nThe boys flew away\n", encoding="utf-8")
    plain = runner.invoke(app, ["score", str(lines), "-m", str(model)])
    as_json = runner.invoke(app, ["score", str(lines), "-m", str(model), "--json"])
    assert plain.exit_code == 0 and as_json.exit_code == 0, as_json.stderr
    rows = [json.loads(row) for row in as_json.stdout.splitlines()]
    assert [r["line"] for r in rows] == ["Wendy said nothing.", "", "The boys flew away"]
    for row, columns in zip(rows, plain.stdout.splitlines(), strict=True):
        logprob, tokens, perplexity = columns.split("\t")
        assert f"{row['logprob']:.6f}" == logprob and str(row["tokens"]) == tokens
        if row["tokens"]:
            assert f"{row['perplexity']:.4f}" == perplexity
        else:
            assert row["perplexity"] is None and perplexity == "nan"


def test_cli_eval_tokens_add_up_to_the_report(trained, tmp_path):
    model, _ = trained
    text = tmp_path / "held.txt"
    text.write_text("Wendy said the Neverland was far.\n\nThe zebra flew away.\n", encoding="utf-8")
    for extra in ([], ["--cache"]):
        report = runner.invoke(app, ["eval", str(text), "-m", str(model), "--json", *extra])
        rows = runner.invoke(app, ["eval", str(text), "-m", str(model), "--tokens", *extra])
        assert report.exit_code == 0 and rows.exit_code == 0, rows.stderr
        values = json.loads(report.stdout)
        tokens = [json.loads(row) for row in rows.stdout.splitlines()]
        assert [t["position"] for t in tokens] == list(range(1, len(tokens) + 1))
        assert len(tokens) == values["tokens"]
        mean = -sum(t["logprob"] for t in tokens) / len(tokens)
        scored = values["adapted"] if extra else values  # with --cache, as read adapting
        assert mean == pytest.approx(scored["cross_entropy"], rel=1e-6)
        assert all(t["prob"] == pytest.approx(np.exp(t["logprob"])) for t in tokens)
        unknown = [t["token"] for t in tokens if t.get("unk")]
        assert "zebra" in unknown and "Wendy" not in unknown


def test_cli_sample_json_gives_each_tokens_probability_before_the_chain(trained):
    model, _ = trained
    args = ["--start", "Wendy said", "--length", "15", "--temperature", "0.7", "--top-k", "5"]
    plain = sample(model, *args, "--width", "0", "--no-stream")
    result = sample(model, *args, "--json", "--top-probs", "3", "--count", "2")
    assert result.exit_code == 0, result.stderr
    first, second = (json.loads(row) for row in result.stdout.splitlines())
    assert first["text"] == plain.stdout.rstrip("\n") and second["text"] != first["text"]
    assert first["start"] == "Wendy said" and first["stop"] is None and first["unknown"] == []
    assert len(first["tokens"]) == 15
    for t in first["tokens"]:
        assert 0 < t["prob"] <= 1 and t["prob"] == pytest.approx(np.exp(t["logprob"]))
        top = [u["logprob"] for u in t["top"]]
        assert len(top) == 3 and top == sorted(top, reverse=True)
        assert t["logprob"] <= top[0] + 1e-12  # the model's own odds, not the chain's
    # the probabilities are the model's: the same text read by eval scores each token the same
    model_of = api.load_model(model)
    ids = api.prompt_ids(model_of, "Wendy said", None) + [t["id"] for t in first["tokens"]]
    assert [model_of.vocab.tokens[t["id"]] for t in first["tokens"]] == [
        t["token"] for t in first["tokens"]
    ]
    nll, _ = api.token_nll(model_of, ids)
    np.testing.assert_allclose([t["logprob"] for t in first["tokens"]], -nll[-15:], rtol=1e-6)


def test_cli_greedy_json_takes_the_top_token_unless_dry_steps_in(trained):
    model, _ = trained
    args = ["--start", "Wendy", "--length", "40", "--greedy", "--json", "--top-probs", "1"]
    plain = json.loads(sample(model, *args, "--dry-multiplier", "0").stdout)
    assert all(t["token"] == t["top"][0]["token"] for t in plain["tokens"])
    dry = json.loads(sample(model, *args).stdout)
    assert any(t["token"] != t["top"][0]["token"] for t in dry["tokens"])
