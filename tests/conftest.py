import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the gradcheck helper

REPO = Path(__file__).resolve().parent.parent


def write_excerpt(path: Path, chars: int) -> Path:
    """Write the first `chars` characters of the bundled corpus to path, as UTF-8; return path."""
    text = (REPO / "corpora" / "peter_pan.txt").read_text(encoding="utf-8")[:chars]
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def book_text():
    """A short piece of the bundled corpus (always present in the repository)."""
    return (REPO / "corpora" / "peter_pan.txt").read_text(encoding="utf-8")[:20000]
