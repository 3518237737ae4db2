"""The layout rules of ADR 0001 (packages) and ADR 0018 (inside ``decisioning``), checked rather
than hoped."""

import ast
import importlib
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROJECT_PACKAGES = {"decisioning", "feature_repo", "registry", "pipelines", "bentos"}
ALLOWED = {
    "decisioning": set(),
    "feature_repo": {"decisioning"},  # decisioning.core.names only (below)
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


# Inside decisioning: what each part may import. The core is the decision and its ports; fraud and
# conduct are scoring logic; adapters hold one technology each; pillars and wiring compose them.
LAYERS = {
    "core": {"core"},
    "fraud": {"core", "fraud"},
    "conduct": {"core", "conduct"},
    "telemetry": {"core", "conduct", "telemetry", "settings", "adapters"},
    "adapters": {"core", "fraud", "conduct", "telemetry", "settings", "adapters"},
    "settings": {"core", "adapters"},
}
# The core does no I/O: besides the standard library it may use these, nothing else (of
# OpenTelemetry, the API's tracing and context only; the SDK and exporters are adapters' business).
CORE_THIRD_PARTY = ("pydantic", "yaml", "opentelemetry.trace", "opentelemetry.context")
# Standard-library modules that reach the network, the disk or other processes.
CORE_FORBIDDEN_STDLIB = {"socket", "sqlite3", "subprocess", "urllib", "http", "ssl", "shutil"}
NAMES_MODULE = "decisioning.core.names"
SHARED_NAMES = ("fraud-detector", "conduct-classifier", "customer_activity_push")


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, anywhere in it, as an absolute dotted name.

    ``from a import b`` counts as ``a.b`` (``b`` may be a module), relative imports are resolved
    against the file's package, and ``importlib.import_module("...")`` or ``__import__("...")``
    with a literal name count too.
    """
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = importlib.util.resolve_name("." * node.level + base, package)
            modules |= {f"{base}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Call) and _dynamic_import(node):
            modules.add(node.args[0].value)  # type: ignore[attr-defined]
    return modules


def _dynamic_import(call: ast.Call) -> bool:
    name = getattr(call.func, "id", None) or getattr(call.func, "attr", None)
    return (
        name in {"import_module", "__import__"}
        and bool(call.args)
        and isinstance(call.args[0], ast.Constant)
        and isinstance(call.args[0].value, str)
    )


def layer_of(module: str) -> str:
    """``decisioning.adapters.audit.store`` -> ``adapters``; a top-level module is its own."""
    return module.split(".")[1] if module.count(".") else ""


@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_decisioning_layers_import_only_what_they_may(layer: str) -> None:
    root = ROOT / "decisioning"
    paths = (
        [root / f"{layer}.py"]
        if (root / f"{layer}.py").exists()
        else root.joinpath(layer).rglob("*.py")
    )
    for path in paths:
        used = {layer_of(m) for m in imported_modules(path) if m.startswith("decisioning.")}
        used.discard(layer_of(f"decisioning.{layer}"))
        assert used <= LAYERS[layer], (
            f"{path.relative_to(ROOT)} imports {sorted(used - LAYERS[layer])}"
        )


def test_the_core_uses_no_library_beyond_its_short_list() -> None:
    for path in (ROOT / "decisioning" / "core").rglob("*.py"):
        for module in imported_modules(path):
            top = module.split(".")[0]
            if top in {"decisioning", "__future__"}:
                continue
            allowed = module.startswith(CORE_THIRD_PARTY) or (
                top in sys.stdlib_module_names and top not in CORE_FORBIDDEN_STDLIB
            )
            assert allowed, f"{path.relative_to(ROOT)} imports {module}"


def test_feature_repo_takes_only_the_shared_names_from_decisioning() -> None:
    for path in (ROOT / "feature_repo").rglob("*.py"):
        used = {m for m in imported_modules(path) if m.startswith("decisioning")}
        foreign = {m for m in used if m != NAMES_MODULE and not m.startswith(f"{NAMES_MODULE}.")}
        assert not foreign, f"{path.relative_to(ROOT)} imports {sorted(foreign)}"


def test_new_models_train_on_a_service_the_feature_repo_defines() -> None:
    """The training service is named once in the core; the frozen services keep their own names
    in feature_repo, and the one the core names must be among them."""
    from decisioning.core.names import FRAUD_FEATURE_SERVICE
    from feature_repo import feature_services

    defined = {
        service.name
        for service in vars(feature_services).values()
        if type(service).__name__ == "FeatureService"
    }
    assert FRAUD_FEATURE_SERVICE in defined, sorted(defined)


def test_names_shared_across_layers_are_spelled_once() -> None:
    """A model, feature service or push source name as a literal anywhere but the names module
    is a second spelling that a rename would miss."""
    for package in [*sorted(PROJECT_PACKAGES), "bench"]:
        for path in (ROOT / package).rglob("*.py"):
            if path == ROOT / "decisioning" / "core" / "names.py":
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Constant) and node.value in SHARED_NAMES:
                    pytest.fail(f"{path.relative_to(ROOT)}:{node.lineno} spells {node.value!r}")


def test_every_entry_point_builds_the_engine_through_the_one_wiring_function() -> None:
    """Only ``decisioning/wiring.py`` may get hold of ``DecisionEngine`` (tests build their own):
    any import of the class elsewhere, under whatever name, or a call of it, is a second wiring."""
    builders = set()
    for package in [*sorted(PROJECT_PACKAGES), "bench"]:
        for path in (ROOT / package).rglob("*.py"):
            if path == ROOT / "decisioning" / "core" / "engine.py":
                continue
            imported = any(m.endswith(".DecisionEngine") for m in imported_modules(path))
            called = any(
                isinstance(node, ast.Call)
                and "DecisionEngine"
                in {getattr(node.func, "id", ""), getattr(node.func, "attr", "")}
                for node in ast.walk(ast.parse(path.read_text()))
            )
            if imported or called:
                builders.add(str(path.relative_to(ROOT)))
    assert builders == {"decisioning/wiring.py"}, sorted(builders)


def test_importing_the_cli_creates_nothing(tmp_path: Path) -> None:
    code = "import pipelines.cli, decisioning.settings"
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=True)

    assert list(tmp_path.iterdir()) == [], "import must not create folders or files"


def test_the_cli_module_loads() -> None:
    assert callable(importlib.import_module("pipelines.cli").main)


# Tests whose subject is a ``riskctl`` command: they may import its module. Everything else in
# tests/ and bench/ calls the library the commands call (pipelines.jobs and the rest).
COMMAND_TESTS = {
    "tests/unit/pipelines/test_cli.py",  # the CLI's own wiring and its --help
    "tests/unit/pipelines/commands/test_bento.py",  # riskctl bento build
    "tests/unit/pipelines/commands/test_demo.py",  # riskctl demo's checks and its table
    "tests/unit/pipelines/commands/test_serve.py",  # riskctl serve's BentoML home
    "tests/unit/pipelines/jobs/test_scheduled.py",  # riskctl jobs offers the jobs' names
    "tests/unit/registry/test_prompt_promotion.py",  # riskctl prompts evaluate's exit code
}


def imports_of_commands(path: Path) -> list[str]:
    """Each ``pipelines.commands`` module the file imports, ``from pipelines import commands``
    included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found += [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
    return sorted({m for m in found if m.split(".")[:2] == ["pipelines", "commands"]})


def test_benches_and_tests_call_the_library_not_the_cli_modules() -> None:
    """The command modules only parse options and print; a bench or a test that needs a step
    imports it from the library, unless the command itself is what it tests."""
    offenders = {}
    for folder in ("bench", "tests"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            relative = str(path.relative_to(ROOT))
            if relative not in COMMAND_TESTS and (commands := imports_of_commands(path)):
                offenders[relative] = commands
    assert not offenders, f"import the library instead of the CLI's modules: {offenders}"
    missing = sorted(name for name in COMMAND_TESTS if not (ROOT / name).is_file())
    assert not missing, f"exceptions naming no file (moved? rename them here): {missing}"
