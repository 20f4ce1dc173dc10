"""The documentation against the program: README.md and docs/*.md document every command and
option, every example command in their ```sh blocks runs, and every relative link leads somewhere.

The pages are read in the order README.md links them (README.md first). Their examples run in
that order, each distinct command line once, in one temporary folder holding the files they name
(half the bundled book as `book.txt`, a Penn-Treebank-style `ptb.train.txt`, `held_out.txt`,
`sentences.txt`; later pages may use what earlier examples made, such as `model.npz`), with an
`rnngen` on PATH that appends tiny sizes to every `train` (one epoch, 16 units, the class softmax)
so all the examples run in about a minute. Adapted or skipped, because they cannot run in a test:
`pip install ...`, the development commands (pytest, ruff, make_golden: they install packages or
run this very suite) and anything that does not call rnngen (the benchmarks), `rnngen
--install-completion` (it edits the user's shell start-up files), and `plot --png` and `--device
gpu`, which without matplotlib or without CuPy and a GPU must fail with exit code 69 instead.
"""

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main
from conftest import REPO

from rnngen.cli.app import app
from rnngen.core import backend
from rnngen.errors import MissingExtraError
from rnngen.text.tokenize import TokenizerConfig, tokenize

README_LINES = 250  # the front door stays short; the rest belongs in docs/
DOCS_TRAIN = ["--epochs", "1", "--hidden", "16", "--embed", "16", "--batch-size", "32",
              "--seq-len", "16", "--softmax", "class"]  # fmt: skip
SKIPPED_SEGMENTS = re.compile(r"^(pip |ruff |python -m pytest|python tests/)")
NEVER_RUN = ("--install-completion",)
LINK = re.compile(r"\[[^\]]*\]\(([^()\s]+)\)")


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def doc_pages() -> list:
    """README.md, then the docs/ pages in the order README.md first links them."""
    readme = REPO / "README.md"
    pages = [readme]
    for target in LINK.findall(_prose(_read(readme))):
        path = (REPO / target.split("#")[0]).resolve()
        if path.parent == REPO / "docs" and path.suffix == ".md" and path not in pages:
            pages.append(path)
    return pages


def _prose(text: str) -> str:
    """The text without fenced code blocks and inline code, where brackets are not links."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "", text)


def sh_commands(text: str) -> list:
    """The command lines of a page's ```sh blocks that run rnngen, without set-up steps."""
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", text, flags=re.S):
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


def all_commands() -> list:
    """Every page's example commands, in page order, each distinct command line once."""
    return list(dict.fromkeys(c for page in doc_pages() for c in sh_commands(_read(page))))


def test_every_docs_page_is_linked_from_the_readme():
    pages = set(doc_pages())
    unlinked = [p.name for p in sorted((REPO / "docs").glob("*.md")) if p.resolve() not in pages]
    assert not unlinked, f"docs pages README.md does not link: {', '.join(unlinked)}"


def test_readme_is_a_short_front_door():
    lines = len(_read(REPO / "README.md").splitlines())
    assert lines <= README_LINES, f"README.md has {lines} lines; move detail into docs/"


def test_readme_has_examples_of_every_command():
    commands = " ".join(sh_commands(_read(REPO / "README.md")))
    for name in typer.main.get_command(app).commands:
        assert f"rnngen {name}" in commands, name


def test_every_command_and_option_is_documented():
    text = "\n".join(_read(page) for page in doc_pages())
    group = typer.main.get_command(app)
    missing = []
    for param in group.params:
        missing += [o for o in param.opts if not _mentioned(o, text)]
    for name, command in group.commands.items():
        if f"rnngen {name}" not in text:
            missing.append(f"rnngen {name}")
        for param in command.params:
            # typer may vendor its own click, so options are told by their type name
            if param.param_type_name == "option" and not getattr(param, "hidden", False):
                names = param.opts + param.secondary_opts
                missing += [f"{name} {o}" for o in names if not _mentioned(o, text)]
    assert not missing, f"not in README.md or docs/: {', '.join(missing)}"


def _mentioned(option: str, text: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", text) is not None


def test_every_relative_link_leads_somewhere():
    pages = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    broken = []
    for page in pages:
        for target in LINK.findall(_prose(_read(page))):
            if re.match(r"[a-z]+:", target):  # https:, mailto:
                continue
            path, _, anchor = target.partition("#")
            resolved = (page.parent / path).resolve() if path else page
            if not resolved.exists():
                broken.append(f"{page.name}: {target} (no such file)")
            elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
                broken.append(f"{page.name}: {target} (no such heading)")
    assert not broken, "broken links:\n" + "\n".join(broken)


def _anchors(page: Path) -> set:
    """The anchors GitHub gives a page's headings: lower case, punctuation dropped, spaces -."""
    text = re.sub(r"^```.*?^```", "", _read(page), flags=re.S | re.M)
    headings = re.findall(r"^#+\s+(.*?)\s*$", text, flags=re.M)
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


@pytest.fixture(scope="module")
def docs_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("docs")
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


def _has_extras() -> tuple:
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
    return has_matplotlib, has_gpu


def test_every_example_runs(docs_folder):
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR",)}
    env["PATH"] = f"{docs_folder / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(REPO)
    env["SHELL"] = "/bin/bash"  # for --show-completion
    has_matplotlib, has_gpu = _has_extras()
    failures = []
    commands = all_commands()
    assert len(commands) > 30
    for command in commands:
        # `exit $?` keeps bash from exec'ing a lone command, so bash stays the parent process
        # that --show-completion looks for, however pytest itself was started
        proc = subprocess.run(
            ["bash", "-o", "pipefail", "-c", f"{command}\nexit $?"],
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
    assert not failures, "examples that fail:\n" + "\n".join(failures)
