"""The stock feast CLI works on ``feature_repo/`` as a Feast user expects, agreeing with riskctl."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from decisioning.adapters.feast.store import read_feast_config
from decisioning.settings import load_settings
from feature_repo.definitions import DEFINITIONS

ROOT = Path(__file__).resolve().parents[4]
REPO = ROOT / "feature_repo"
FEAST = shutil.which("feast", path=str(ROOT / ".venv" / "bin")) or "feast"


def test_the_clis_store_is_the_local_profiles_under_the_default_home() -> None:
    cli = yaml.safe_load((REPO / "feature_store.yaml").read_text())
    settings = load_settings({"RISK_ENV": "local", "RISK_HOME": "var"})
    profile = read_feast_config(settings, {}).repo

    for section in ("registry", "online_store"):
        cli[section]["path"] = str((REPO / cli[section]["path"]).resolve())
        profile[section]["path"] = str((ROOT / profile[section]["path"]).resolve())
    assert cli == profile, "feature_repo/feature_store.yaml must describe the local profile's store"


@pytest.mark.slow
def test_feast_plan_reads_every_definition_once(tmp_path: Path) -> None:
    # given a copy of the folder beside an empty home, as on a fresh clone after make setup
    shutil.copytree(REPO, tmp_path / "feature_repo", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "var" / "feast").mkdir(parents=True)

    # when the stock CLI plans it
    plan = subprocess.run(
        [FEAST, "plan"], cwd=tmp_path / "feature_repo", capture_output=True, text=True, timeout=300
    )

    # then it succeeds and would create every view and service riskctl registers, each once
    assert plan.returncode == 0, plan.stderr[-2000:]
    for definition in DEFINITIONS:
        if type(definition).__name__ in {"FileSource", "PushSource", "RequestSource"}:
            continue  # feast plan lists sources only when they change; views name them
        lines = [line for line in plan.stdout.splitlines() if line.endswith(f" {definition.name}")]
        assert len(lines) == 1, f"{definition.name}: {lines or 'not planned'}\n{plan.stdout}"
