"""Import arrows that keep the shared words and the settings free of the domain."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from app.paths import ROOT


def _app_imports(relative: str) -> set[str]:
    tree = ast.parse((ROOT / relative).read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] if node.module != "app" else [f"app.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found.update(name for name in names if name == "app" or name.startswith("app."))
    return found


def test_the_vocabulary_is_a_leaf() -> None:
    assert _app_imports("app/vocabulary.py") == set()


def test_settings_import_no_domain_module() -> None:
    assert _app_imports("app/settings.py") <= {"app.vocabulary"}


def test_no_test_module_imports_another() -> None:
    """Shared helpers live in helper modules (`tests/fixtures.py`, `tests/outbox_rig.py`, ...),
    so running one test file never runs another's module-level code."""
    tests = Path(__file__).parent
    offenders = [
        f"{path.name}: {line.strip()}"
        for path in sorted(tests.glob("test_*.py"))
        for line in path.read_text().splitlines()
        if re.match(r"\s*(from|import) tests\.(test_\w+|conftest)\b", line)
    ]
    assert offenders == []


def test_every_package_of_the_app_is_installed() -> None:
    """A package missing from pyproject's list imports from a checkout but not from an
    installed copy: the wheel (and a non-editable install) would leave it out."""
    import tomllib

    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for init in (ROOT / "app").rglob("__init__.py")
    }
    assert found == listed
