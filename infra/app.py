"""CDK entry point: one stack set per environment, picked with ``-c env=dev|staging|prod``.

Without ``env`` every environment is synthesized (what ``make infra`` lints). The context in
``cdk.json`` is loaded here as the default, so ``python -m infra.app`` synthesizes exactly what
``cdk synth`` does; values given with ``-c`` still win.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import aws_cdk as cdk

from infra.environments import ENVIRONMENTS, EnvironmentConfig
from infra.image import ServiceImage
from infra.stacks.environment import add_stack_set

CDK_JSON = Path(__file__).with_name("cdk.json")


def default_context() -> dict[str, Any]:
    """The ``context`` block of ``cdk.json``."""
    context: dict[str, Any] = json.loads(CDK_JSON.read_text())["context"]
    return context


def selected_environments(name: str | None) -> list[EnvironmentConfig]:
    """The environment named by ``-c env=...``, or all of them."""
    if name is None:
        return list(ENVIRONMENTS.values())
    if name not in ENVIRONMENTS:
        raise SystemExit(f"unknown env {name!r}; choose one of {', '.join(ENVIRONMENTS)}")
    return [ENVIRONMENTS[name]]


def service_image(app: cdk.App) -> ServiceImage:
    return ServiceImage(
        repository=str(app.node.get_context("image_repository")),
        tag=str(app.node.get_context("image_tag")),
    )


def deployment_target(app: cdk.App) -> cdk.Environment | None:
    """Account and region from ``-c account=... -c region=...`` or the CDK CLI's defaults.

    Left unset (as in ``make infra``), stacks are environment-agnostic and need no lookups.
    """
    account = app.node.try_get_context("account") or os.environ.get("CDK_DEFAULT_ACCOUNT")
    region = app.node.try_get_context("region") or os.environ.get("CDK_DEFAULT_REGION")
    if account is None and region is None:
        return None
    return cdk.Environment(account=account, region=region)


def main() -> None:
    app = cdk.App(context=default_context())
    image = service_image(app)
    target = deployment_target(app)
    for config in selected_environments(app.node.try_get_context("env")):
        add_stack_set(app, config, image, target)
    app.synth()


if __name__ == "__main__":
    main()
