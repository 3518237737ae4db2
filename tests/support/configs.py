"""The repository's ``configs/`` folder, for tests that read the configuration as shipped."""

from pathlib import Path

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
