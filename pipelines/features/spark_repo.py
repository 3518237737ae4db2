"""The Feast definitions read through Feast's Spark offline store, for point-in-time training sets.

``feature_repo`` stays the only list of features: its file sources are swapped for Spark sources
with the same names over the same Parquet tables (a local folder or ``s3a://``), and every view
and service keeps its name, schema and features. So a training set through Spark asks for the
same feature service as serving does, and only the offline store differs.
"""

from __future__ import annotations

import copy
from typing import Any

from feast import FeatureStore, FeatureView, FileSource, PushSource, RepoConfig
from feast.data_source import DataSource
from feast.infra.offline_stores.contrib.spark_offline_store.spark_source import SparkSource

from decisioning.adapters.feast.store import read_feast_config
from decisioning.settings import Settings
from pipelines.features.repo import feature_definitions
from pipelines.features.spark_session import SparkSettings

SPARK_OFFLINE_STORE = "spark"


def spark_feature_definitions(features_uri: str) -> list[Any]:
    """``feature_definitions()`` with each file source read by Spark from ``features_uri``."""
    root = features_uri.rstrip("/")
    swapped: dict[str, Any] = {}
    for definition in feature_definitions():
        if isinstance(definition, FileSource):
            table = definition.path.rsplit("/", 1)[-1]
            swapped[definition.name] = SparkSource(
                name=definition.name,
                path=f"{root}/{table}",
                file_format="parquet",
                timestamp_field=definition.timestamp_field,
                description=definition.description,
            )
    out = []
    for definition in feature_definitions():
        if isinstance(definition, FileSource):
            out.append(swapped[definition.name])
        elif isinstance(definition, PushSource):
            out.append(_push_onto(definition, swapped))
        elif isinstance(definition, FeatureView):
            out.append(_view_onto(definition, swapped))
        else:
            out.append(definition)
    return out


def open_spark_feature_store(
    settings: Settings, spark: SparkSettings, features_uri: str | None = None
) -> FeatureStore:
    """The profile's Feast store with the Spark offline store, definitions applied.

    ``features_uri`` defaults to ``RISK_HOME/features``, where ``features build`` writes. The
    registry is the profile's; apply it to a scratch home when the real one must stay untouched.
    """
    config = read_feast_config(settings)
    repo = {
        **config.repo,
        "offline_store": {"type": SPARK_OFFLINE_STORE, "spark_conf": spark.spark_conf()},
    }
    (settings.home / "feast").mkdir(parents=True, exist_ok=True)
    store = FeatureStore(
        repo_path=str(settings.home), config=RepoConfig(repo_path=settings.home, **repo)
    )
    store.apply(spark_feature_definitions(features_uri or str(settings.home / "features")))
    return store


def _push_onto(push: PushSource, sources: dict[str, Any]) -> PushSource:
    return PushSource(
        name=push.name,
        batch_source=sources[_name_of(push.batch_source)],
        description=push.description,
    )


def _view_onto(view: FeatureView, sources: dict[str, Any]) -> FeatureView:
    """A copy of the view over the Spark source of its batch source's name (and push source)."""
    moved = copy.copy(view)
    moved.batch_source = sources[_name_of(view.batch_source)]
    if isinstance(view.stream_source, PushSource):
        moved.stream_source = _push_onto(view.stream_source, sources)
    elif view.stream_source is not None:
        raise TypeError(f"view {view.name}: only push sources stream into the fraud views")
    return moved


def _name_of(source: DataSource | None) -> str:
    if source is None:
        raise TypeError("a feature view without a batch source cannot be read offline")
    return source.name
