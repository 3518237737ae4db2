"""A built bento serves the models it carries with the tracking server unreachable (issue 18).

Given a copy of the session's trained world (worlds.py: both champions trained and promoted, a
lookup model then standing in as the conduct champion, so the bento stays small),
``riskctl bento build`` stores the bento and imports both champions into BentoML's model store;
the stored bento is then served with ``bentoml serve TAG``, as an image runs it, with the
profile's tracking URI pointing at a port nobody listens on. It must get ready and decide a
payment with the pinned fraud model, not degraded: nothing at start-up asked MLflow.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bentoml
import pytest
from bentoml._internal.bento import BentoStore

from decisioning.settings import MlflowSettings
from pipelines.serving_process import stop_process
from registry.names import CHAMPION, CONDUCT_CLASSIFIER, FRAUD_DETECTOR
from registry.tracking import mlflow_session
from tests.support.lookup_models import register_lookup_model
from tests.support.served import free_port, post_decision
from tests.support.worlds import (
    KEY,
    PrivateRedis,
    TrainedWorld,
    copy_world,
    database_url,
    drop_copy,
    riskctl,
    serve_command,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@dataclass(frozen=True)
class ServedBento:
    url: str
    labels: dict[str, str]
    customer: str
    terminal: str
    pays_at: str


def build_bento(env: dict[str, str], home: Path) -> Any:
    """``riskctl bento build`` in the world; the stored bento."""
    built = riskctl(env, "bento", "build")
    tag = re.search(r"built bento (\S+)", built)
    assert tag is not None, built
    return bentoml.bentos.get(tag.group(1), _bento_store=BentoStore(str(home / "bentos")))


def serve_bento(tag: str, env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """``bentoml serve TAG`` on a free port, once ``/readyz`` answers 200.

    Run outside the repository, so the bento's own copy of the code serves.
    """
    bentoml_cli = str(Path(sys.executable).with_name("bentoml"))
    return serve_command([bentoml_cli, "serve", tag, "--port"], env, log, log.parent)


@pytest.fixture(scope="module")
def served(
    trained_world: TrainedWorld, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServedBento]:
    home = tmp_path_factory.mktemp("carried")
    redis = PrivateRedis(free_port(), home / "redis.log")
    process = copy = None
    try:
        redis.start()
        copy = copy_world(trained_world, home, redis.port)
        # The build needs a conduct champion: a lookup model stands in for the world's own, so
        # the bento carries no embedding model and builds and starts in seconds.
        mlflow = MlflowSettings(
            tracking_uri=copy.env["RISK_MLFLOW_URL"], artifact_root=str(home / "mlartifacts")
        )
        with mlflow_session(mlflow) as client:
            version = register_lookup_model(client, CONDUCT_CLASSIFIER, mlflow.artifact_root, 0)
            client.set_registered_model_alias(CONDUCT_CLASSIFIER, CHAMPION, version)
        bentoml_home = home / "bentoml"
        bento = build_bento({**copy.env, "BENTOML_HOME": str(bentoml_home)}, bentoml_home)
        nobody = free_port()
        with pytest.raises(OSError):  # the tracking server the bento is given is not there
            socket.create_connection(("127.0.0.1", nobody), timeout=2).close()
        env = {
            **copy.env,
            "BENTOML_HOME": str(bentoml_home),
            "RISK_MLFLOW_URL": database_url(f"risk_mlflow_{uuid.uuid4().hex[:8]}", nobody),
            # what the bento's image sets (its Dockerfile's ENV): the pinned versions
            **{variable.name: str(variable.value) for variable in bento.info.envs},
        }
        process, url = serve_bento(str(bento.tag), env, home / "serve.log")
        yield ServedBento(
            url,
            dict(bento.info.labels),
            trained_world.customer,
            trained_world.terminal,
            trained_world.pays_at,
        )
    finally:
        if process is not None:
            stop_process(process)
        redis.stop()
        if copy is not None:
            drop_copy(copy)


def test_the_built_bento_decides_with_its_pinned_model_without_the_tracking_server(
    served: ServedBento,
) -> None:
    # given the built bento served with the tracking server unreachable (ready: the fixture)
    payment = {
        "transaction": {
            "transaction_id": f"carried-{uuid.uuid4().hex[:12]}",
            "occurred_at": served.pays_at,
            "customer_id": served.customer,
            "terminal_id": served.terminal,
            "amount": 24.5,
            "country": "GB",
        }
    }

    # when a payment is decided
    status, decision = post_decision(served.url, payment, KEY, timeout_s=120)

    # then the fraud model it was built with scored it, and nothing was degraded
    assert status == 200, f"expected a decision, got {status}: {decision}"
    assert not decision["degraded"], f"the fraud pillar must be up: {decision}"
    versions = {model["name"]: model["version"] for model in decision["model_versions"]}
    assert versions.get(FRAUD_DETECTOR) == served.labels[FRAUD_DETECTOR], (
        f"scored by the pinned version {served.labels[FRAUD_DETECTOR]}: {decision}"
    )
