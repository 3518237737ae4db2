"""The layout rules of ADR 0001, checked rather than hoped."""

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROJECT_PACKAGES = {"decisioning", "feature_repo", "registry", "pipelines", "bentos"}
ALLOWED = {
    "decisioning": set(),
    "feature_repo": set(),
    "registry": {"decisioning"},
    "bentos": {"decisioning"},
    "pipelines": {"decisioning", "registry", "feature_repo"},
}


def imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names & PROJECT_PACKAGES


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_packages_import_only_what_the_layout_allows(package: str) -> None:
    for path in (ROOT / package).rglob("*.py"):
        foreign = imported_packages(path) - ALLOWED[package] - {package}
        assert not foreign, f"{path.relative_to(ROOT)} imports {sorted(foreign)}"


def test_importing_the_cli_creates_nothing(tmp_path: Path) -> None:
    code = "import pipelines.cli, decisioning.settings"
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=True)

    assert list(tmp_path.iterdir()) == [], "import must not create folders or files"


def test_the_cli_module_loads() -> None:
    assert callable(importlib.import_module("pipelines.cli").main)
