"""The README against the program: every command and option is documented, and every example
command in its ```sh blocks runs.

The examples run in order in one temporary folder holding the files they name (half the bundled
book as `book.txt`, a Penn-Treebank-style `ptb.train.txt`, `held_out.txt`, `sentences.txt`), with an
`rnngen` on PATH that appends tiny sizes to every `train` (one epoch, 16 units, the class softmax)
so the whole README runs in well under a minute. Adapted or skipped, because they cannot run in
a test: `pip install ...` and the development commands (pytest, ruff, make_golden: they install
packages or run this very suite), `rnngen --install-completion` (it edits the user's shell start-up
files), and `plot --png` and `--device gpu`, which without matplotlib or without CuPy and a GPU
must fail with exit code 69 instead.
"""

import os
import re
import shlex
import subprocess
import sys

import pytest
import typer.main
from conftest import REPO

from rnngen.cli.app import app
from rnngen.core import backend
from rnngen.errors import MissingExtraError
from rnngen.text.tokenize import TokenizerConfig, tokenize

README = (REPO / "README.md").read_text(encoding="utf-8")
DOCS_TRAIN = ["--epochs", "1", "--hidden", "16", "--embed", "16", "--batch-size", "32",
              "--seq-len", "16", "--softmax", "class"]  # fmt: skip
SKIPPED_SEGMENTS = re.compile(r"^(pip |ruff |python -m pytest|python tests/)")
NEVER_RUN = ("--install-completion",)


def sh_commands() -> list:
    """The command lines of the README's ```sh blocks, without set-up and development steps."""
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", README, flags=re.S):
        for line in block.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            segments = [s for s in line.split(" && ") if not SKIPPED_SEGMENTS.match(s.strip())]
            command = " && ".join(segments)
            if re.search(r"(^|[|&;(]\s*)rnngen\b", command) and not any(
                flag in command for flag in NEVER_RUN
            ):
                commands.append(command)
    return commands


def test_readme_has_examples_of_every_command():
    commands = " ".join(sh_commands())
    for name in typer.main.get_command(app).commands:
        assert f"rnngen {name}" in commands, name


def test_every_command_and_option_is_in_the_readme():
    group = typer.main.get_command(app)
    missing = []
    for param in group.params:
        missing += [o for o in param.opts if not _mentioned(o)]
    for name, command in group.commands.items():
        if f"rnngen {name}" not in README:
            missing.append(f"rnngen {name}")
        for param in command.params:
            if param.param_type_name == "option":  # typer may vendor its own click
                names = param.opts + param.secondary_opts
                missing += [f"{name} {o}" for o in names if not _mentioned(o)]
    assert not missing, f"not in README.md: {', '.join(missing)}"


def _mentioned(option: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", README) is not None


@pytest.fixture(scope="module")
def docs_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("readme")
    book = (REPO / "corpora" / "peter_pan.txt").read_text(encoding="utf-8")
    lines = book.splitlines()
    (folder / "book.txt").write_text("\n".join(lines[:3000]) + "\n", encoding="utf-8")
    (folder / "held_out.txt").write_text("\n".join(lines[3000:3300]) + "\n", encoding="utf-8")
    ptb = [" ".join(tokenize(line.lower(), TokenizerConfig())) for line in lines[200:700]]
    (folder / "ptb.train.txt").write_text("\n".join(p for p in ptb if p) + "\n")
    (folder / "sentences.txt").write_text(
        "Wendy said that the boys were lost.\nthe the the the\n\nPeter flew to the house.\n"
    )
    bin_dir = folder / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "rnngen"
    shim.write_text(
        f"#!{sys.executable}\n"
        "import sys\n"
        f"sys.path.insert(0, {str(REPO)!r})\n"
        "from rnngen.cli.app import run\n"
        "args = sys.argv[1:]\n"
        f"if args[:1] == ['train']:\n    args += {DOCS_TRAIN!r}\n"
        "sys.argv = ['rnngen', *args]\n"
        "run()\n"
    )
    python = bin_dir / "python"
    python.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} "$@"\n')
    for script in (shim, python):
        script.chmod(0o755)
    return folder


def test_every_readme_example_runs(docs_folder):
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR",)}
    env["PATH"] = f"{docs_folder / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(REPO)
    env["SHELL"] = "/bin/bash"  # for --show-completion
    try:
        import matplotlib  # noqa: F401

        has_matplotlib = True
    except ImportError:
        has_matplotlib = False
    try:
        backend.use_device("gpu")
        has_gpu = True
    except MissingExtraError:
        has_gpu = False
    finally:
        backend.use_device("cpu")
    failures = []
    commands = sh_commands()
    assert len(commands) > 30
    for command in commands:
        proc = subprocess.run(
            ["bash", "-o", "pipefail", "-c", command],
            cwd=docs_folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            stdin=subprocess.DEVNULL,
        )
        missing_extra = ("--png" in command and not has_matplotlib) or (
            "--device gpu" in command and not has_gpu
        )
        expected = 69 if missing_extra else 0
        if proc.returncode != expected or "Traceback" in proc.stderr:
            failures.append(f"{command}\n  exit {proc.returncode}: {proc.stderr.strip()[-500:]}")
    assert not failures, "README examples that fail:\n" + "\n".join(failures)
