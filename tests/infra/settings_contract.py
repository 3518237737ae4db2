"""What the settings read from the environment, taken from the profiles and settings themselves.

The deployment files (Dockerfile, compose file, ECS task definitions) are checked against these
names, so a variable renamed in a profile fails the infra tests instead of a deployment.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "configs"
SETTINGS_MODULE = REPO / "decisioning" / "settings.py"
# ${NAME} or ${NAME:-default}, where the default may hold one more ${...}: the settings' syntax.
_VARIABLE = re.compile(r"\$\{(?P<name>[A-Z0-9_]+)(?::-(?P<default>(?:[^{}]|\$\{[^}]*\})*))?\}")
_NAME_IN_CODE = re.compile(r"[\"'](RISK_[A-Z0-9_]+)[\"']")
# Set by the settings loader itself before profiles are expanded.
_SET_BY_LOADER = {"RISK_HOME"}


def _variables(text: str) -> dict[str, bool]:
    """Each variable named in ``text``, mapped to whether it is required (has no default)."""
    found: dict[str, bool] = {}
    for match in _VARIABLE.finditer(text):
        default = match.group("default")
        found[match.group("name")] = found.get(match.group("name"), False) or default is None
        for inner in _VARIABLE.finditer(default or ""):
            found.setdefault(inner.group("name"), False)
    return found


def profile_files(profile: str) -> list[Path]:
    """A profile's YAML and the Feast store config it names, where that file exists."""
    profile_path = CONFIGS / "profiles" / f"{profile}.yaml"
    store_config = REPO / yaml.safe_load(profile_path.read_text())["feast"]["store_config"]
    return [profile_path, *([store_config] if store_config.exists() else [])]


def required_variables(profile: str) -> set[str]:
    """Variables a container running ``profile`` must be given."""
    required = {
        name
        for path in profile_files(profile)
        for name, is_required in _variables(path.read_text()).items()
        if is_required
    }
    return required - _SET_BY_LOADER


def names_the_settings_read() -> set[str]:
    """Every variable any profile or store config names, plus those the settings module reads."""
    profiles = sorted((CONFIGS / "profiles").glob("*.yaml"))
    names = {
        name
        for profile in profiles
        for path in profile_files(profile.stem)
        for name in _variables(path.read_text())
    }
    return names | set(_NAME_IN_CODE.findall(SETTINGS_MODULE.read_text()))
