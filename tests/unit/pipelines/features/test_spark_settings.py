"""configs/spark.yaml: one section per profile, environment variables filled in, strict keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from decisioning.core.errors import SettingsError
from decisioning.settings import DEFAULT_CONFIG_DIR, PROFILES
from pipelines.features.spark_session import FIXED_CONF, load_spark_settings


@pytest.mark.parametrize("profile", PROFILES)
def test_every_profile_has_spark_settings_with_the_fixed_conf(profile: str) -> None:
    settings = load_spark_settings(DEFAULT_CONFIG_DIR, profile, env={})

    conf = settings.spark_conf()

    assert conf.items() >= FIXED_CONF.items(), "UTC and microsecond Parquet must always hold"
    assert conf["spark.ui.enabled"] == "false"
    assert "spark.jars.packages" not in conf, "nothing may be downloaded when a job starts"


def test_the_embedded_default_runs_on_two_local_cores_unless_the_environment_says() -> None:
    local = load_spark_settings(DEFAULT_CONFIG_DIR, "local", env={})
    cluster = load_spark_settings(
        DEFAULT_CONFIG_DIR, "services", env={"RISK_SPARK_MASTER": "spark://spark:7077"}
    )

    assert local.spark_conf()["spark.master"] == "local[2]"
    assert cluster.spark_conf()["spark.master"] == "spark://spark:7077"


def test_under_spark_submit_the_cluster_sets_the_master() -> None:
    conf = load_spark_settings(DEFAULT_CONFIG_DIR, "aws", env={}).spark_conf()

    assert "spark.master" not in conf, "spark-submit's --master must not be overridden"
    assert "spark.driver.memory" not in conf


def test_an_unknown_key_is_refused_naming_it(tmp_path: Path) -> None:
    (tmp_path / "spark.yaml").write_text("local:\n  master: local[2]\n  executors: 3\n")

    with pytest.raises(SettingsError, match="executors"):
        load_spark_settings(tmp_path, "local", env={})


def test_a_missing_profile_section_is_refused(tmp_path: Path) -> None:
    (tmp_path / "spark.yaml").write_text("local:\n  master: local[2]\n")

    with pytest.raises(SettingsError, match="aws"):
        load_spark_settings(tmp_path, "aws", env={})
