"""``riskctl serve`` and ``riskctl decide``: run the bento locally and send it events."""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from decisioning.settings import DEFAULT_CONFIG_DIR, load_settings

# Tables of decisions are wide: give them room even when the output is a log, not a terminal.
console = Console(width=None if sys.stdout.isatty() else 160)
PROJECT_ROOT = DEFAULT_CONFIG_DIR.parent
SERVICE = "bentos.service:RiskService"


def serve(port: Annotated[int, typer.Option(help="HTTP port")] = 3000) -> None:
    """Serve RiskService (and its two scorers) with BentoML until interrupted."""
    settings = load_settings()  # fail fast, with one line, on a bad profile
    os.environ["BENTOML_HOME"] = str(instance_home(settings.home, port))
    bentoml = str(Path(sys.executable).with_name("bentoml"))
    command = [bentoml, "serve", SERVICE, "--port", str(port), "--working-dir", str(PROJECT_ROOT)]
    console.print(f"serving {SERVICE} on http://127.0.0.1:{port}", highlight=False)
    sys.stdout.flush()
    # Become the server: a signal to this process (Ctrl-C, a supervisor's SIGTERM) reaches
    # BentoML itself, which stops its workers; a child process would be orphaned instead.
    os.execv(bentoml, command)


def instance_home(home: Path, port: int) -> Path:
    """BentoML's home for the server on ``port``: one per instance on a host.

    BentoML keeps Prometheus's multiprocess files under ``BENTOML_HOME`` and empties that
    folder when a server starts, so a second server sharing it zeroed the first one's counters.
    The base is the operator's ``BENTOML_HOME`` when set, else ``RISK_HOME/bentoml``.
    """
    base = Path(os.environ.get("BENTOML_HOME") or home / "bentoml")
    return base / "instances" / f"port-{port}"


def decide(
    file: Annotated[Path | None, typer.Option(help="a JSON event: {transaction, text}")] = None,
    sample: Annotated[int, typer.Option(help="decide N simulated payments and messages")] = 0,
    url: Annotated[str, typer.Option(help="the service")] = "http://127.0.0.1:3000",
) -> None:
    """Post events to a running service and print the decisions."""
    from pipelines.decision_requests import sample_requests

    if (file is None) == (sample == 0):
        raise typer.BadParameter("give either --file or --sample N")
    settings = load_settings()
    keys = [key.get_secret_value() for key in settings.api_keys]
    if not keys:
        raise typer.BadParameter("set RISK_API_KEYS to a key the service accepts")
    bodies = [json.loads(file.read_text())] if file else sample_requests(settings.data_path, sample)
    decisions = [post_decision(url, keys[0], body) for body in bodies]
    console.print(decision_table(decisions))


def post_decision(url: str, key: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{url}/v1/decisions",
        data=json.dumps(body, default=str).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            decision: dict[str, Any] = json.loads(response.read())
            return decision
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")[:300]
        raise typer.BadParameter(f"the service answered {exc.code}: {detail}") from exc


def decision_table(
    decisions: list[dict[str, Any]], explanations: dict[str, str] | None = None
) -> Table:
    """One line per decision: action, score, category, top reasons, first piece of evidence,
    and, when ``explanations`` are given (by decision id), each one's stored explanation."""
    table = Table(title="decisions", show_lines=False)
    widths = {"subject": 11, "action": 9, "score": 5, "category": 30, "top reasons": 34}
    # With explanations, evidence gives up room: at the demo's 160 columns the explanation was
    # squeezed to nothing.
    evidence = 56 if explanations is None else 30
    for column, width in {**widths, "evidence": evidence}.items():
        table.add_column(column, overflow="ellipsis", no_wrap=True, max_width=width)
    if explanations is not None:
        table.add_column("explanation", overflow="fold", min_width=24, max_width=60)
    for d in decisions:
        reasons = ", ".join(r["code"] for r in d["reason_codes"][:2])
        quotes = [e.get("quote") or e["reference"] for e in d["evidence"] if e["kind"] != "feature"]
        evidence = (
            f'"{quotes[0]}"' if quotes else (d["reason_codes"] or [{}])[0].get("description", "")
        )
        degraded = "*" if d["degraded"] else ""
        cells = [
            d["subject"],
            d["action"] + degraded,
            f"{d['risk_score']:.3f}",
            d["risk_category"],
            reasons,
            evidence,
            *([] if explanations is None else [explanations.get(d["decision_id"], "")]),
        ]
        # Customer and LLM text is shown as written, never read as Rich markup ("[/i]" raised,
        # "[link=...]" hid a link).
        table.add_row(*(escape(str(cell)) for cell in cells))
    table.caption = "* degraded: an input was missing and the policy's fallback applied"
    return table
