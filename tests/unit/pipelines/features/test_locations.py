"""Feature tables at another location: the file sources move, the views follow, nothing shared
is changed."""

from __future__ import annotations

from feast import FeatureView, FileSource, PushSource

from feature_repo.definitions import DEFINITIONS
from pipelines.features.repo import feature_definitions

LOCATION = "s3://risk-data/data/features"


def test_sources_and_the_views_over_them_read_the_location() -> None:
    moved = feature_definitions(LOCATION)

    sources = [d for d in moved if isinstance(d, FileSource)]
    assert sources and all(s.path.startswith(f"{LOCATION}/") for s in sources)
    assert {s.path.rsplit("/", 1)[-1] for s in sources} == {
        "customer_activity.parquet",
        "customer_attributes.parquet",
        "terminal_risk.parquet",
    }
    for definition in moved:
        if isinstance(definition, FeatureView):
            assert definition.batch_source.path.startswith(LOCATION), definition.name
        if isinstance(definition, PushSource):
            assert definition.batch_source.path.startswith(LOCATION), definition.name
    assert [d.name for d in moved] == [d.name for d in DEFINITIONS], "same objects, same order"


def test_the_repository_definitions_keep_their_relative_paths() -> None:
    feature_definitions(LOCATION)

    paths = [d.path for d in DEFINITIONS if isinstance(d, FileSource)]
    assert all(path.startswith("features/") for path in paths), paths
    assert feature_definitions() == list(DEFINITIONS)
