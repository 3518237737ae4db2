"""``riskctl bento build``: the RiskService bento, with each ``@champion`` pinned and carried.

``bentos/bentofile.yaml`` is the one description of the bento. This command adds only what is known
at build time: the exact version behind each model's ``champion`` alias, as a label (for people and
deployment tooling) and as the variable the service pins its model with
(``decisioning.wiring.PINNED_VERSION_VARIABLES``), so a deployed bento keeps serving the versions
it was built with after ``champion`` moves on; and each of those versions itself, checked against
its manifest and imported into BentoML's model store as ``<name>:<version>``, listed in the
bento's ``models``, so the bento serves them without the tracking server (ADR 0013).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
import yaml

from decisioning.settings import DEFAULT_CONFIG_DIR, load_settings
from registry.names import CHAMPION

if TYPE_CHECKING:
    from decisioning.core.decision import ModelVersion

PROJECT_ROOT = DEFAULT_CONFIG_DIR.parent
BENTOFILE = PROJECT_ROOT / "bentos" / "bentofile.yaml"

app = typer.Typer(help="BentoML: build the bento with the champions pinned.", no_args_is_help=True)


def resolve_champions(
    names: Iterable[str], resolve_champion: Callable[[str], ModelVersion]
) -> dict[str, str]:
    """Each model's exact ``@champion`` version; one error naming every model without one."""
    from decisioning.adapters.mlflow.model_store import ModelNotAvailable

    versions, missing = {}, []
    for name in names:
        try:
            versions[name] = resolve_champion(name).version
        except ModelNotAvailable as exc:
            missing.append(str(exc))
    if missing:
        raise ModelNotAvailable(
            f"cannot build the bento without a champion for every model: {'; '.join(missing)}; "
            "promote one with `riskctl registry promote NAME --approver WHO --reason WHY`"
        )
    return versions


def pin_versions(
    bentofile: Mapping[str, Any], versions: Mapping[str, str], variables: Mapping[str, str]
) -> dict[str, Any]:
    """The bentofile's options plus each version as a label and as its runtime variable.

    ``variables`` maps a model name to the environment variable the service reads its pinned
    version from; a bentofile entry for the same variable is replaced, never duplicated.
    """
    pinned = {variables[name]: version for name, version in versions.items()}
    envs = [env for env in bentofile.get("envs") or [] if env["name"] not in pinned]
    # stage "all" (the default): BentoML writes them into the image's Dockerfile as ENV
    envs += [{"name": variable, "value": version} for variable, version in pinned.items()]
    labels = {**(bentofile.get("labels") or {}), **versions}
    return {**bentofile, "labels": labels, "envs": envs}


def with_models(bentofile: Mapping[str, Any], tags: Iterable[str]) -> dict[str, Any]:
    """The bentofile's options with ``tags`` (BentoML model-store tags) among its ``models``."""
    models = [*(bentofile.get("models") or [])]
    models += [tag for tag in tags if tag not in models]
    return {**bentofile, "models": models}


def build_bento(options: Mapping[str, Any], build_ctx: Path) -> tuple[str, Path]:
    """Build and store the bento with BentoML's Python API; returns its tag and where it is."""
    import bentoml
    from bentoml.bentos import BentoBuildConfig

    # BentoML's own bentofile schema: unknown keys are refused, envs become its env records.
    config = BentoBuildConfig.load(dict(options))
    bento = bentoml.bentos.build(
        config.service,
        name=config.name,
        description=config.description,
        labels=config.labels,
        include=config.include,
        exclude=config.exclude,
        envs=config.envs,
        docker=config.docker,
        python=config.python,
        conda=config.conda,
        models=list(config.models),
        build_ctx=str(build_ctx),
    )
    return str(bento.tag), Path(bento.path)


@app.command("build")
def build() -> None:
    """Build the bento from bentos/bentofile.yaml with both champions pinned and carried."""
    from decisioning.adapters.mlflow.model_store import (
        bento_model_store,
        import_to_bento_store,
        resolve,
    )
    from decisioning.core.decision import ModelVersion
    from decisioning.wiring import PINNED_VERSION_VARIABLES

    settings = load_settings()
    versions = resolve_champions(
        PINNED_VERSION_VARIABLES,
        lambda name: resolve(settings.mlflow.tracking_uri, name, CHAMPION),
    )
    # BentoML's own variable wins; otherwise the bento store is local state like the rest.
    os.environ.setdefault("BENTOML_HOME", str(settings.home / "bentoml"))
    store = bento_model_store()
    models = [
        import_to_bento_store(
            settings.mlflow.tracking_uri, ModelVersion(name=name, version=version), store
        )
        for name, version in versions.items()
    ]
    bentofile = yaml.safe_load(BENTOFILE.read_text())
    options = with_models(pin_versions(bentofile, versions, PINNED_VERSION_VARIABLES), models)
    tag, path = build_bento(options, PROJECT_ROOT)
    typer.echo(f"built bento {tag} (in {path})")
    for (name, version), model in zip(versions.items(), models, strict=True):
        variable = PINNED_VERSION_VARIABLES[name]
        typer.echo(f"  {name} v{version} ({variable}={version}, model {model})")
