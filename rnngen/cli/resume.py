"""`train --resume` on the command line: the options a checkpoint settles (keyed by flag), the
check that the options given agree with them, and the command that continues a stopped run."""

import shlex

from ..errors import ConfigError
from ..files.checkpoint import Checkpoint


def checkpoint_options(ckpt: Checkpoint) -> dict:
    """The value each `train` option that sets the model, the training or the tokenizer has in a
    checkpoint, keyed by the option's name: a resumed run takes these from the checkpoint."""
    m, t, tok = ckpt.model, ckpt.train, ckpt.tokenizer
    return {
        "--cell": m.cell,
        "--hidden": m.hidden,
        "--embed": m.embed,
        "--layers": m.layers,
        "--dropout": m.dropout,
        "--tie-weights": m.tie_weights,
        "--untie-weights": not m.tie_weights,
        "--softmax": m.softmax,
        "--classes": m.n_classes if m.softmax == "class" else None,
        "--seq-len": t.seq_len,
        "--batch-size": t.batch_size,
        "--optimizer": t.optimizer,
        "--lr": t.learning_rate(m.cell),
        "--lr-decay": t.lr_decay,
        "--patience": t.patience,
        "--val-every": t.val_every,
        "--clip": t.clip,
        "--state-reset": t.state_reset,
        "--unigram-bias": t.unigram_bias,
        "--zero-bias": not t.unigram_bias,
        "--sparse-embedding": t.lazy_adam,
        "--dense-embedding": not t.lazy_adam,
        "--val-frac": t.val_frac,
        "--seed": t.seed,
        "--dtype": t.dtype,
        "--level": tok.level,
        "--tokenizer": tok.scheme,
        "--lowercase": tok.lowercase,
        "--lines": tok.lines,
    }


def check_resume_options(ckpt: Checkpoint, given: dict) -> None:
    """Refuse options given with --resume that contradict the checkpoint: `given` maps the options
    the user gave (by name, as checkpoint_options keys them) to their values; options the
    checkpoint settles are fine when they equal its values, other options are not looked at."""
    held = checkpoint_options(ckpt)
    differ = [
        f"{name} {given[name]} (the checkpoint's: {held[name]})"
        for name in held
        if name in given and given[name] != held[name]
    ]
    if differ:
        raise ConfigError(
            "--resume takes the model and training settings from the checkpoint, but "
            f"{'; '.join(differ)}; drop {'this option' if len(differ) == 1 else 'these options'} "
            "or train a new model without --resume"
        )


def resume_command(
    checkpoint: str, input: str | None = None, out: str = "model.npz", options: dict | None = None
) -> str:
    """The shell command that continues an interrupted `rnngen train` run from `checkpoint`, each
    word quoted for a POSIX shell: the same input (None: the bundled corpus), -o out, and
    `options` (option name -> value; True: a flag given; None or False: left out), which must
    hold every other option the resumed run needs (--valid, --checkpoint, --log-file ...)."""
    words = ["rnngen", "train"]
    if input is not None:  # a file named like an option is given as ./-name
        words.append(f"./{input}" if input.startswith("-") and input != "-" else input)
    words += ["-o", str(out)]
    for name, value in (options or {}).items():
        if value is True:
            words.append(name)
        elif value is not None and value is not False:
            words += [name, str(value)]
    return shlex.join([*words, "--resume", str(checkpoint)])
