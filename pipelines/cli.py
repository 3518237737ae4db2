"""``riskctl``: the one console entry point. ``main(argv) -> int`` is what tests call."""

from __future__ import annotations

import logging
import os
import sys
import warnings
from collections.abc import Sequence

import typer

from decisioning.core.errors import RiskPlatformError
from pipelines.commands import (
    audit,
    bento,
    conduct,
    data,
    demo,
    features,
    fraud,
    jobs,
    monitor,
    prompts,
    registry,
    serve,
    train,
)

app = typer.Typer(
    name="riskctl",
    help="Risk intelligence platform: simulate, validate, train, serve, decide, audit.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
# One sub-app per area; each lives in pipelines/commands/<area>.py.
app.add_typer(data.app, name="data")
app.add_typer(audit.app, name="audit")
app.add_typer(train.app, name="train")
app.add_typer(conduct.app, name="conduct")
app.add_typer(registry.app, name="registry")
app.add_typer(prompts.app, name="prompts")
app.add_typer(features.app, name="features")
app.add_typer(fraud.app, name="fraud")
app.add_typer(monitor.app, name="monitor")
app.add_typer(bento.app, name="bento")
app.add_typer(jobs.app, name="jobs")
app.command(name="demo")(demo.demo)
app.command(name="serve")(serve.serve)
app.command(name="decide")(serve.decide)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return its exit code. Failures print one line on stderr."""
    quiet_third_party_output()
    command = typer.main.get_command(app)
    try:
        result = command.main(
            args=list(sys.argv[1:] if argv is None else argv),
            prog_name="riskctl",
            standalone_mode=False,
        )
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort:
        print("riskctl: aborted", file=sys.stderr)
        return 130
    except typer.TyperException as exc:  # usage errors: unknown option, bad value, no command
        exc.show()  # type: ignore[attr-defined]
        return int(exc.exit_code)
    except RiskPlatformError as exc:
        print(f"riskctl: {exc}", file=sys.stderr)
        return 1
    return result if isinstance(result, int) else 0


def quiet_third_party_output() -> None:
    """Keep the CLI's output ours: frameworks' progress bars, INFO lines and warnings go quiet."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    os.environ.setdefault("MLFLOW_CONFIGURE_LOGGING", "false")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    for package in ("feast", "mlflow", "dask", "great_expectations", "sklearn", "xgboost"):
        warnings.filterwarnings("ignore", module=rf"{package}(\..*)?$")
    # Raised with a stack level that points at our call sites, so the module filter misses them.
    for message in ("On demand feature view is an experimental", "Discarding nonzero nanoseconds"):
        warnings.filterwarnings("ignore", message=message)


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    run()
