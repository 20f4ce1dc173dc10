"""Human-readable renderings of what `rnngen info` and `rnngen eval` report (the CLI prints them;
`--json` prints the dicts themselves instead)."""

from ..reading.evaluate import perplexity
from ..training.schedule import format_duration


def show_token(token: str) -> str:
    """A token as it reads in a list: line breaks and spaces made visible."""
    shown = token.replace("\n", "\\n").replace("\t", "\\t")
    return shown if shown.strip() else repr(token)


def _number(value, spec: str, missing: str = "-") -> str:
    return missing if value is None else format(value, spec)


def info_lines(info: dict) -> list:
    """`rnngen info`'s text: one `name  value` line per fact."""
    m, v, t, h = info["model"], info["vocabulary"], info["tokenizer"], info["history"]
    size = "" if info.get("bytes") is None else f", {info['bytes']:,} bytes"
    softmax = m["softmax"] + (f", {m['classes']} classes" if m.get("classes") else "")
    level = "characters" if t["level"] == "char" else f"words, {t['scheme']} rules"
    dtype = info["dtype"] if isinstance(info["dtype"], str) else "/".join(info["dtype"])
    book = t["level"] == "word" and t["scheme"] == "book"
    lines = f", lines {t.get('lines', 'keep')}" if book else ""
    rows = [
        ("file", f"{info.get('file') or '-'} ({info['format']} version {info['version']}{size})"),
        ("cell", f"{m['cell']}, {m['layers']} layer{'s' if m['layers'] != 1 else ''}"),
        ("sizes", f"embedding {m['embed']}, hidden {m['hidden']}"),
        ("softmax", softmax),
        ("dropout", f"{m['dropout']:g}"),
        ("tied weights", "yes" if m["tie_weights"] else "no"),
        ("parameters", f"{info['parameters']:,} ({dtype})"),
        ("vocabulary", f"{v['size']:,} tokens"),
        ("top tokens", " ".join(show_token(tok) for tok in v["top"]) or "-"),
        ("tokenizer", f"{level}, {'lower case' if t['lowercase'] else 'case kept'}{lines}"),
    ]
    if h["epochs"] or h.get("steps"):
        max_epochs = h.get("max_epochs")
        of = f" of {max_epochs}" if max_epochs and max_epochs != h["epochs"] else ""
        done = f"{h['epochs']} epoch{'s' if h['epochs'] != 1 else ''}{of}"
        if h.get("time_limit") is not None:  # a run with a time budget: the summary's counts
            done = f"{h['steps']:,} steps in {done}, a {format_duration(h['time_limit'])} budget"
        rows.append(
            (
                "training",
                f"{done} in "
                f"{_number(h['seconds'], '.0f')}s, {_number(h['tokens_per_second'], ',.0f')} "
                f"tok/s, on {_number(h['train_tokens'], ',')} tokens",
            )
        )
        settings = h.get("settings") or {}
        if settings:
            rows.append(
                (
                    "optimizer",
                    f"{settings.get('optimizer', '?')}, lr {_number(settings.get('lr'), 'g')}"
                    f" (last {_number(h.get('final_lr'), 'g')}), seq-len "
                    f"{settings.get('seq_len', '?')}, batch-size {settings.get('batch_size', '?')}",
                )
            )
        if h.get("best_val_ppl") is not None:
            where = f"epoch {h['best_epoch']}"
            if h.get("best_step") is not None:
                where = f"step {h['best_step']:,}"
            rows.append(
                (
                    "validation",
                    f"best perplexity {h['best_val_ppl']:.2f} ({where}) on "
                    f"{_number(h.get('val_tokens_scored') or h['val_tokens'], ',')} tokens; "
                    "unigram baseline "
                    f"{_number(h['unigram_val_ppl'], '.2f')}",
                )
            )
        rows += _end_rows(h, info.get("gradient_statistics"))
    else:
        rows.append(("training", "no history in the file"))
    width = max(len(name) for name, _ in rows) + 2
    return [name.ljust(width) + value for name, value in rows]


def per_epoch_lines(history: dict) -> list:
    """The per-epoch history as a small table (for `info -v`); for a run with a time budget,
    its validations."""
    if history.get("validations"):
        lines = ["  step  epoch  train loss  val loss  val ppl  lr"]
        rows = [
            (f"{e.get('step', '?'):>6}  {e.get('epoch', '?'):>5}", e)
            for e in history["validations"]
        ]
    else:
        lines = ["epoch  train loss  val loss  val ppl  next lr"]
        rows = [(f"{e.get('epoch', '?'):>5}", e) for e in history.get("per_epoch") or []]
    for where, e in rows:
        val = e.get("val_loss")
        val_text = "-" if val is None else f"{val:8.4f}"
        ppl_text = "-" if val is None else f"{_ppl(val):7.2f}"
        lines.append(
            f"{where}  {e.get('train_loss', float('nan')):10.4f}  "
            f"{val_text:>8}  {ppl_text:>7}  {e.get('lr', float('nan')):.3g}"
        )
    return lines


def _ppl(loss: float) -> float:
    return perplexity(loss)


def eval_lines(values: dict) -> list:
    """`rnngen eval`'s text."""
    return [
        f"tokens         {values['tokens']}",
        f"oov rate       {values['oov_rate']:.4f}",
        f"cross-entropy  {values['cross_entropy']:.4f} nats/token",
        f"bits           {values['bits_per_token']:.4f} bits/token",
        f"perplexity     {values['perplexity']:.2f}",
        f"characters     {values['characters']}",
        f"bits/char      {values['bits_per_character']:.4f} bits/character",
        *_adapted_lines(values.get("adapted")),
    ]


def _adapted_lines(adapted: dict | None) -> list:
    if adapted is None:
        return []
    how = []
    if adapted["cache"] is not None:
        c = adapted["cache"]
        how.append(f"cache size {c['size']} theta {c['theta']:g} lambda {c['lambda']:g}")
    if adapted["dynamic"] is not None:
        d = adapted["dynamic"]
        how.append(f"dynamic lr {d['lr']:g} decay {d['decay']:g} length {d['length']}")
    return [
        f"adapted        {', '.join(how)}",
        f"adapted cross-entropy  {adapted['cross_entropy']:.4f} nats/token",
        f"adapted perplexity     {adapted['perplexity']:.2f}",
    ]


def _end_rows(h: dict, has_stats) -> list:
    """The saved model's figure on the whole validation text, and its gradient statistics."""
    rows = []
    if h.get("val_ppl") is not None:
        rows.append(("validated", f"perplexity {h['val_ppl']:.2f} on the whole validation text, "
                     "as `rnngen eval` scores it"))  # fmt: skip
    if h.get("stats_tokens"):
        cut = " (cut short: the time was up)" if h.get("stats_stopped") == "time" else ""
        rows.append(("statistics", f"gradient statistics from {h['stats_tokens']:,} tokens{cut}"))
    elif h.get("stats_tokens") == 0:
        rows.append(("statistics", "none: the time budget was spent; for --dynamic give "
                     "--dynamic-stats TRAINING_TEXT"))  # fmt: skip
    elif h.get("epochs") and has_stats is False:
        why = "saved before the run ended (interrupted)"
        rows.append(("statistics", f"none: {why}; for --dynamic give --dynamic-stats TEXT"))
    return rows


def tune_lines(values: dict) -> list:
    """`rnngen tune`'s text: the best settings of each kind and their perplexities."""
    c = values["cache"]
    lines = [
        f"tokens            {values['tokens']}",
        f"static            perplexity {values['static_perplexity']:.2f}",
        f"cache             perplexity {values['cache_perplexity']:.2f}  "
        f"(--cache-size {c['size']} --cache-theta {c['theta']:g} --cache-lambda {c['lambda']:g})",
    ]
    d = values["dynamic"]
    if d is None:
        lines.append("dynamic           - (the model file has no gradient statistics)")
        return lines
    b, bd = values["both_cache"], values["both_dynamic"]
    lines += [
        f"dynamic           perplexity {values['dynamic_perplexity']:.2f}  "
        f"(--dynamic-lr {d['lr']:g} --dynamic-decay {d['decay']:g} --dynamic-len {d['length']})",
        f"both              perplexity {values['both_perplexity']:.2f}  "
        f"(--cache-size {b['size']} --cache-theta {b['theta']:g} --cache-lambda {b['lambda']:g} "
        f"--dynamic-lr {bd['lr']:g} --dynamic-decay {bd['decay']:g} --dynamic-len {bd['length']})",
        "                  (a lambda of 0 or a learning rate and decay of 0: that method is off)",
    ]
    return lines
