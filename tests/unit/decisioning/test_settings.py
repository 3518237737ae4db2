from pathlib import Path

import pytest
import yaml

from decisioning.core.errors import SettingsError
from decisioning.settings import DEFAULT_CONFIG_DIR, load_settings


def test_local_is_the_default_profile_and_keeps_state_under_risk_home(tmp_path: Path) -> None:
    settings = load_settings({"RISK_HOME": str(tmp_path)})

    assert settings.name == "local"
    assert settings.mlflow.tracking_uri == f"sqlite:///{tmp_path}/mlflow.db"
    assert settings.data_path == tmp_path / "data"
    assert settings.feast.online_store == "sqlite"


def test_services_profile_takes_endpoints_from_the_environment(tmp_path: Path) -> None:
    env = {"RISK_ENV": "services", "RISK_HOME": str(tmp_path), "RISK_AUDIT_URL": "postgresql://x/y"}

    settings = load_settings(env)

    assert settings.audit.url == "postgresql://x/y", "an explicit endpoint must win"
    assert settings.embeddings_cache.url == "redis://127.0.0.1:6379/0", "default applies"
    assert settings.feast.online_store == "redis"


def test_api_keys_come_from_the_environment_and_stay_secret() -> None:
    settings = load_settings({"RISK_API_KEYS": "k1, k2,,"})

    assert [key.get_secret_value() for key in settings.api_keys] == ["k1", "k2"]
    assert "k1" not in repr(settings), "secrets must not appear in reprs or logs"


def test_unknown_profile_is_refused() -> None:
    with pytest.raises(SettingsError, match="unknown RISK_ENV 'prod'"):
        load_settings({"RISK_ENV": "prod"})


def test_aws_profile_refuses_to_start_without_its_endpoints() -> None:
    with pytest.raises(SettingsError, match="RISK_MLFLOW_URL"):
        load_settings({"RISK_ENV": "aws"})


def test_extra_key_in_a_profile_is_refused(tmp_path: Path) -> None:
    profile = yaml.safe_load((DEFAULT_CONFIG_DIR / "profiles" / "local.yaml").read_text())
    profile["mlflow"]["trackign_uri"] = "typo"
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "local.yaml").write_text(yaml.safe_dump(profile))

    with pytest.raises(SettingsError, match="trackign_uri"):
        load_settings({"RISK_CONFIG_DIR": str(tmp_path)})


def test_settings_are_frozen(tmp_path: Path) -> None:
    settings = load_settings({"RISK_HOME": str(tmp_path)})

    with pytest.raises(ValueError):
        settings.name = "aws"  # type: ignore[misc]


def test_every_profile_parses_with_its_variables_set(tmp_path: Path) -> None:
    env = {
        "RISK_HOME": str(tmp_path),
        "RISK_MLFLOW_URL": "postgresql://m",
        "RISK_ARTIFACT_URI": "s3://a",
        "RISK_AUDIT_URL": "postgresql://a",
        "RISK_AUDIT_ANCHOR_URI": "s3://anchor/checkpoints",
        "OPENSEARCH_URL": "https://os",
        "RISK_REDIS_URL": "rediss://r",
        "RISK_OPERATIONS_URL": "postgresql://o",
    }
    for profile in ("local", "services", "aws"):
        assert load_settings({**env, "RISK_ENV": profile}).name == profile


def test_the_aws_profile_keeps_features_and_reports_beside_its_data(tmp_path: Path) -> None:
    env = {
        "RISK_HOME": str(tmp_path),
        "RISK_ENV": "aws",
        "RISK_DATA_URI": "s3://bucket/data",
        "RISK_MLFLOW_URL": "http://mlflow",
        "RISK_ARTIFACT_URI": "s3://a",
        "RISK_AUDIT_URL": "postgresql://a",
        "RISK_AUDIT_ANCHOR_URI": "s3://anchor/checkpoints",
        "OPENSEARCH_URL": "https://os",
        "RISK_REDIS_URL": "rediss://r",
        "RISK_OPERATIONS_URL": "postgresql://o",
    }
    settings = load_settings(env)
    assert settings.data_location == "s3://bucket/data"
    assert settings.features_location == "s3://bucket/data/features"
    assert settings.reports_location == "s3://bucket/data/monitoring"
    with pytest.raises(SettingsError, match="keeps its data at s3://bucket/data"):
        _ = settings.data_path  # no local folder to give
    local = load_settings({"RISK_HOME": str(tmp_path)})
    assert local.features_location == str(tmp_path / "features"), "local paths are unchanged"


def test_the_shared_redis_keeps_message_embeddings_a_week_unless_told_otherwise(
    tmp_path: Path,
) -> None:
    # given the services profile, as is and with the operator's own expiry and prefix
    env = {"RISK_ENV": "services", "RISK_HOME": str(tmp_path)}
    default = load_settings(env).embeddings_cache
    chosen = load_settings(
        {**env, "RISK_EMBEDDINGS_TTL_SECONDS": "3600", "RISK_EMBEDDINGS_PREFIX": "emb:eu:"}
    ).embeddings_cache

    # then every vector in the Redis shared with Feast's features expires, a week by default
    assert (default.ttl_seconds, default.prefix) == (7 * 24 * 3600, "emb:")
    assert (chosen.ttl_seconds, chosen.prefix) == (3600, "emb:eu:")
    # and an expiry of zero (which Redis refuses at the first write) is refused at start
    with pytest.raises(SettingsError):
        load_settings({**env, "RISK_EMBEDDINGS_TTL_SECONDS": "0"})
