"""The Python API page's examples run as written: every ```python block of API_PAGE, in order, in
one namespace, in a folder holding a small model.npz and held_out.txt."""

import re

import pytest
from typer.testing import CliRunner

from rnngen.cli.app import app

API_PAGE = "docs/api.md"  # the page whose examples run
TINY = ["--epochs", "1", "--hidden", "16", "--embed", "8", "--batch-size", "4", "--seq-len", "8"]


def python_blocks(text: str) -> list:
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def test_the_page_has_examples():
    from conftest import REPO

    assert len(python_blocks((REPO / API_PAGE).read_text(encoding="utf-8"))) >= 5


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    from conftest import REPO

    folder = tmp_path_factory.mktemp("api")
    text = (REPO / "corpora" / "peter_pan.txt").read_text(encoding="utf-8")
    (folder / "train.txt").write_text(text[:12000], encoding="utf-8")
    (folder / "held_out.txt").write_text(text[12000:17000], encoding="utf-8")
    result = CliRunner().invoke(
        app, ["train", str(folder / "train.txt"), "-o", str(folder / "model.npz"), "-q", *TINY]
    )
    assert result.exit_code == 0, result.stderr
    return folder


def test_every_example_runs(folder, monkeypatch, capsys):
    from conftest import REPO

    monkeypatch.chdir(folder)
    namespace = {}
    for number, block in enumerate(python_blocks((REPO / API_PAGE).read_text("utf-8")), 1):
        try:
            exec(compile(block, f"{API_PAGE} example {number}", "exec"), namespace)
        except Exception as e:  # name the example that failed
            raise AssertionError(f"example {number} of {API_PAGE} failed: {e!r}\n{block}") from e
    assert capsys.readouterr().out  # the examples print what they show
