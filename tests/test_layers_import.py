"""The package's layers import only downwards, as each subpackage's __init__ says."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "rnngen"

# subpackage (or top-level module) -> what it may import from rnngen besides itself
ALLOWED = {
    "errors": set(),
    "core": {"errors"},
    "text": {"errors"},
    "reading": {"errors", "core", "text"},
    "training": {"errors", "core", "text", "reading"},
    "files": {"errors", "core", "text", "reading", "training"},
    "api": {"errors", "core", "text", "reading", "training", "files", "__init__"},
    "cli": {"errors", "core", "text", "reading", "training", "files", "api", "__init__"},
    "__init__": {"api"},  # lazily, on first use of rnngen.load (the Python API)
    "__main__": {"cli"},
}


def layer_of(path: Path) -> str:
    parts = path.relative_to(PACKAGE).parts
    return parts[0] if len(parts) > 1 else path.stem


def imported_layers(path: Path) -> set:
    """The rnngen layers a module imports (relative imports resolved against its package)."""
    here = path.relative_to(PACKAGE).parent.parts
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(here[: len(here) - node.level + 1])
                target = base + (node.module.split(".") if node.module else [])
                names = [] if node.module else [a.name for a in node.names]
            elif node.module and node.module.split(".")[0] == "rnngen":
                target = node.module.split(".")[1:]
                names = [] if target else [a.name for a in node.names]
            else:
                continue
            if target:
                found.add(target[0])
            else:  # `from . import x` at the top, or `from rnngen import x`
                found.update(n if (PACKAGE / n).is_dir() or (PACKAGE / f"{n}.py").exists()
                             else "__init__" for n in names)  # fmt: skip
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "rnngen":
                    found.add(parts[1] if len(parts) > 1 else "__init__")
    return found


def test_every_layer_imports_only_the_layers_below_it():
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        layer = layer_of(path)
        bad = imported_layers(path) - ALLOWED[layer] - {layer}
        if bad:
            wrong.append(f"{path.relative_to(PACKAGE)} ({layer}) imports {sorted(bad)}")
    assert not wrong, "\n".join(wrong)


def test_the_rule_sees_a_wrong_import(tmp_path, monkeypatch):
    """A test that cannot fail is a defect: an upward import must be caught."""
    fake = tmp_path / "rnngen"
    (fake / "core").mkdir(parents=True)
    (fake / "core" / "bad.py").write_text("from ..cli import app\nfrom ..files.storage import x\n")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", fake)
    assert imported_layers(fake / "core" / "bad.py") == {"cli", "files"}


def test_every_subpackage_says_what_it_may_import():
    for init in PACKAGE.glob("*/__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) or ""
        assert "May import:" in doc, init
