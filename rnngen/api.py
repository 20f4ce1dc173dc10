"""The operations behind the CLI's subcommands, as plain functions a program can call too.

Each takes and returns data (never prints), so `cli.py` is left with parsing, printing and mapping
errors to exit codes.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import backend
from .class_softmax import make_class_bounds
from .corpus import Corpus, default_corpus_path, encode_text, read_text
from .errors import ConfigError, OutputError
from .evaluate import EvalResult, evaluate
from .generate import generate, random_start_id, start_ids
from .model import ModelConfig
from .storage import TrainedModel, is_npz, load_corpus, save_model
from .tokenize import TokenizerConfig, detokenize, tokenize
from .train import TrainConfig, train


def training_corpus(
    path: str | None,
    tokenizer: TokenizerConfig | None = None,
    max_vocab: int | None = None,
    min_count: int = 1,
) -> Corpus:
    """The corpus to train on: an `encode` output, a text file, `-` for stdin, or (path None) the
    bundled default corpus. Tokenizer settings only apply to text; an encoded corpus has its own."""
    if path is not None and path != "-" and is_npz(path):
        if tokenizer is not None or max_vocab is not None or min_count != 1:
            raise ConfigError(
                f"{path} is already encoded, with its own tokenizer and vocabulary; "
                "drop the tokenizer options or give the text instead"
            )
        return load_corpus(path)
    text = read_text(str(default_corpus_path()) if path is None else path)
    return encode_text(text, tokenizer or TokenizerConfig(), max_vocab, min_count)


def model_config(vocab, softmax: str = "full", classes: int | None = None, **sizes) -> ModelConfig:
    """The model config for a vocabulary; for the class softmax the classes are cut from the
    vocabulary's counts (about sqrt(V) of them unless `classes` says otherwise)."""
    bounds = make_class_bounds(vocab.counts, classes) if softmax == "class" else ()
    return ModelConfig(len(vocab), softmax=softmax, class_bounds=bounds, **sizes)


def check_writable(path) -> None:
    """Fail before hours of training, not after, when the output cannot be written."""
    folder = Path(path).parent
    if not folder.is_dir():
        raise OutputError(f"cannot write {path}: folder {folder} does not exist")
    if Path(path).is_dir():
        raise OutputError(f"cannot write {path}: it is a folder; give a file name")


def encode_for(corpus: Corpus, text: str):
    """Ids of another text (a validation file) under the corpus's tokenizer and vocabulary."""
    return corpus.vocab.encode(tokenize(text, corpus.tokenizer))


def train_model(
    corpus: Corpus,
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    out,
    val_ids=None,
    on_event=None,
) -> TrainedModel:
    """Train on the corpus, saving the best model to `out` whenever validation improves.
    Validation uses val_ids when given, else the tail of the corpus."""
    check_writable(out)

    def save_best(params, history):
        save_model(out, TrainedModel(model_cfg, corpus.tokenizer, corpus.vocab, params, history))

    result = train(corpus.ids, model_cfg, train_cfg, val_ids, on_event, save_best)
    model = TrainedModel(model_cfg, corpus.tokenizer, corpus.vocab, result.params, result.history)
    save_model(out, model)  # the best parameters again, with the complete history
    return model


@dataclass(frozen=True)
class EvalReport:
    result: EvalResult
    oov_rate: float  # share of the text's tokens outside the model's vocabulary

    def to_dict(self) -> dict:
        r = self.result
        return {
            "tokens": r.tokens,
            "oov_rate": self.oov_rate,
            "cross_entropy": r.cross_entropy,
            "bits_per_token": r.bits_per_token,
            "perplexity": r.perplexity,
        }


def evaluate_text(model: TrainedModel, text: str, n_streams=1, seq_len=128) -> EvalReport:
    """Score a text with the model, tokenised exactly as the model's training text was."""
    tokens = tokenize(text, model.tokenizer)
    oov = sum(1 for t in tokens if t not in model.vocab)
    ids = model.vocab.encode(tokens)
    params = {k: backend.xp.asarray(v) for k, v in model.params.items()}
    result = evaluate(params, model.config, ids, n_streams, seq_len)
    return EvalReport(result, oov / max(len(tokens), 1))


def sample_text(
    model: TrainedModel,
    start: str | None,
    length: int,
    rng: np.random.Generator,
    temperature=1.0,
    top_k=0,
    greedy=False,
) -> str:
    """The start text (or a start word drawn by frequency) followed by `length` generated tokens,
    detokenised."""
    if start is None:
        prompt = [random_start_id(model.vocab, rng)]
    else:
        prompt = start_ids(start, model.tokenizer, model.vocab)
    params = {k: backend.xp.asarray(v) for k, v in model.params.items()}
    new = generate(params, model.config, prompt, length, rng, temperature, top_k, greedy)
    return detokenize(model.vocab.decode(prompt + list(new)), model.tokenizer)
