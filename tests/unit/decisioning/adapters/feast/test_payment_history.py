"""The Redis payment history: a Redis that is down or silent is a typed feature-store failure."""

from typing import Any

import pytest
import redis

from decisioning.adapters.feast.errors import FeatureStoreUnavailable
from decisioning.adapters.feast.history import RedisPaymentHistory


class _FailingPipeline:
    def __init__(self, error: Exception) -> None:
        self.error = error

    def __enter__(self) -> "_FailingPipeline":
        return self

    def __exit__(self, *_: object) -> None:
        return None

    def watch(self, *_: object) -> None:
        raise self.error


class _FailingClient:
    def __init__(self, error: Exception) -> None:
        self.error = error

    def pipeline(self, **_: Any) -> _FailingPipeline:
        return _FailingPipeline(self.error)


@pytest.mark.parametrize(
    "error",
    [redis.ConnectionError("Connection refused"), redis.TimeoutError("Timeout reading")],
    ids=["down", "silent"],
)
def test_an_unreachable_redis_is_feature_store_unavailable(error: Exception) -> None:
    history = RedisPaymentHistory("redis://127.0.0.1:6379/0", "unit")
    history._client = _FailingClient(error)  # type: ignore[assignment]

    with pytest.raises(FeatureStoreUnavailable, match="unreachable"):
        history.update("C1", lambda customer: customer)
