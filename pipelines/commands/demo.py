"""``riskctl demo``: the main job end to end on the embedded default (docs/design.md, The main job).

simulate → validate → features (build, apply, materialize) → train fraud and conduct →
promote both through their gates → serve the bento → decide a sample → verify the audit chain →
replay a decision. Each stage calls the same function its own command does; the demo only wires
them and prints what happened.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from decisioning.core.errors import RiskPlatformError
from decisioning.settings import Settings, load_settings
from pipelines.commands.audit import replay_stored_explanation
from pipelines.commands.data import simulate_with_status, summary_table
from pipelines.commands.serve import console, decision_table, post_decision
from pipelines.progress import rich_progress
from registry.names import MODEL_NAMES

if TYPE_CHECKING:  # pandas and the simulator load when the demo runs, not for --help
    import pandas as pd

    from decisioning.adapters.llm.explanation import DecisionExplanation

DEMO_PORT = 3917


class DemoFailed(RiskPlatformError):
    """A stage of the demo did not do what it must."""


def demo(
    customers: Annotated[int, typer.Option(min=10)] = 5_000,
    days: Annotated[int, typer.Option(min=7)] = 90,
    seed: Annotated[int, typer.Option()] = 7,
    sample: Annotated[int, typer.Option(min=1, help="events to decide through the service")] = 12,
    port: Annotated[int, typer.Option(help="port for the demo's service")] = DEMO_PORT,
) -> None:
    """Run the whole main job on the embedded default and print the decisions it made."""
    from pipelines.decision_requests import last_day_start, sample_requests
    from pipelines.ingest import load_checked
    from pipelines.simulate import SimulationConfig

    settings = load_settings()
    started = time.perf_counter()
    data_dir = settings.data_path
    transactions_path = data_dir / "transactions.parquet"

    stage(1, f"simulate {customers:,} customers over {days} days (seed {seed}) → {data_dir}")
    world = simulate_with_status(
        SimulationConfig(customers=customers, days=days, seed=seed), data_dir
    )
    console.print(summary_table(world))

    stage(2, "quality gate (Great Expectations)")
    for kind in ("transactions", "texts"):
        frame = load_checked(data_dir / f"{kind}.parquet", kind)
        console.print(f"{kind}: {len(frame):,} rows passed", highlight=False)

    # Serving starts where the simulated history stops being known: the last day is decided live.
    cutoff = last_day_start(world.transactions)
    stage(3, f"features: build, apply, materialize up to {cutoff:%Y-%m-%d %H:%M}")
    features_up_to(settings, transactions_path, cutoff)

    stage(4, "train fraud-detector and conduct-classifier (MLflow), register as challengers")
    train_both(settings, transactions_path)

    stage(5, "promote both through their gates (challenger → champion)")
    promote_both(settings)

    stage(6, f"serve the bento and decide {sample} events")
    monitoring = settings.home / "monitoring"
    with served(port, monitoring / "service.log") as (url, key):
        bodies = sample_requests(data_dir, sample)
        decisions = [post_decision(url, key, body) for body in bodies]
        metrics = save_metrics(url, monitoring / "metrics.prom")
    # Read once the service stopped: a graceful stop writes the explanations still queued.
    explanations = explanations_of(settings, decisions)
    console.print(decision_table(decisions, {k: e.output for k, e in explanations.items()}))
    require_nothing_degraded(decisions, monitoring / "service.log")
    traced = require_traced(decisions, monitoring / "service.log")
    require_explained(decisions, explanations, offline_provider())

    stage(7, "audit: verify the chain, replay every decision")
    audit_and_replay(settings, [d["decision_id"] for d in decisions])

    stage(8, "monitor: drift of the last 30 days against the first 30")
    drift_folder = drift_first_vs_last(world.transactions, monitoring / "drift-demo")

    console.rule("where to look")
    console.print(
        f"metrics   {metrics} (live: riskctl serve, then http://127.0.0.1:3000/metrics)\n"
        f"a trace   {traced}\n"
        f"drift     {drift_folder}/ (Evidently HTML and JSON)\n"
        f"audit     riskctl audit verify | replay ID | export --out decisions.parquet\n"
        f"demo finished in {time.perf_counter() - started:.0f} s",
        highlight=False,
    )


def require_nothing_degraded(decisions: list[dict[str, Any]], log: Path) -> None:
    """Both champions were just promoted: a fallback here means a broken path, not bad luck."""
    causes = sorted({d["component"] for decision in decisions for d in decision["degraded"]})
    if causes:
        raise DemoFailed(
            f"{sum(1 for d in decisions if d['degraded'])} decisions fell back "
            f"({', '.join(causes)}) with both models promoted; see {log}"
        )


def require_traced(decisions: list[dict[str, Any]], log: Path) -> str:
    """Where to read a decision's trace: the spans of the first one decided in this run must be
    in the service's log (exported). A repeat (``replay``) answers with the stored decision and
    the trace id of the run that made it, so a demo run again over its own world has none to show.
    """
    fresh = [decision for decision in decisions if not decision.get("replay")]
    if not fresh:
        return f"none: every decision was a repeat of an earlier run's (see {log})"
    decision = fresh[0]
    span = rf'"name": "decision",\s*"context": {{\s*"trace_id": "0x{decision["trace_id"]}"'
    if not re.search(span, log.read_text(errors="replace")):
        raise DemoFailed(f"the spans of decision {decision['decision_id']} are not in {log}")
    return f"spans of decision {decision['decision_id']} (trace {decision['trace_id']}) in {log}"


def explanations_of(
    settings: Settings, decisions: list[dict[str, Any]]
) -> dict[str, DecisionExplanation]:
    """The stored explanation of each decision that has one, by decision id."""
    from decisioning.adapters.audit import AuditStore
    from decisioning.adapters.llm.explanation import stored_explanation

    store = AuditStore.open(settings.audit.url)
    try:
        found = {d["decision_id"]: stored_explanation(store, d["decision_id"]) for d in decisions}
    finally:
        store.close()
    return {key: explanation for key, explanation in found.items() if explanation}


def offline_provider() -> bool:
    """The service explains with the offline provider (``RISK_LLM_PROVIDER`` unset or offline)."""
    from decisioning.adapters.llm.gateway import LlmConfig

    return LlmConfig.from_env(os.environ).provider == "offline"


def require_explained(
    decisions: list[dict[str, Any]],
    explanations: dict[str, DecisionExplanation],
    offline: bool,
) -> None:
    """Every review and escalation has its linked explanation; nothing else has one.

    The offline provider cannot be down, so under it an "explanation unavailable" is a broken
    path and fails the demo; under a real provider the unavailable ones are counted and shown.
    """
    from decisioning.adapters.llm.explanation import EXPLAINED_ACTIONS

    wanted = {d["decision_id"] for d in decisions if d["action"] in EXPLAINED_ACTIONS}
    missing, extra = wanted - set(explanations), set(explanations) - wanted
    if missing or extra:
        raise DemoFailed(
            f"explanations: {len(missing)} review/escalate decisions have none, "
            f"{len(extra)} others have one ({', '.join(sorted(missing | extra)[:3])})"
        )
    unavailable = sorted(k for k, e in explanations.items() if e.status != "ok")
    if unavailable and offline:
        first = explanations[unavailable[0]]
        raise DemoFailed(
            f"explanations: {len(unavailable)} of {len(wanted)} unavailable under the offline "
            f"provider ({unavailable[0]}: {first.error or first.output})"
        )
    console.print(
        f"{len(wanted) - len(unavailable)} review/escalate decisions explained after they were "
        f"answered, {len(unavailable)} unavailable (audit records of kind explanation)",
        highlight=False,
    )


def stage(number: int, title: str) -> None:
    console.rule(f"{number}. {title}")


def features_up_to(settings: Settings, transactions: Path, cutoff: pd.Timestamp) -> None:
    from pipelines.jobs import demo as steps

    with console.status("building point-in-time feature tables") as status:
        loaded = steps.features_up_to(settings, transactions, cutoff, status.update)
    console.print(
        f"feature services {', '.join(loaded.services)}; online store and velocity history "
        f"seeded for {loaded.seeded_customers:,} customers",
        highlight=False,
    )


def train_both(settings: Settings, transactions: Path) -> None:
    from pipelines.jobs import demo as steps

    fraud = steps.train_fraud_detector(settings, transactions, progress=_note)
    console.print(f"{fraud.name} v{fraud.version}: {_metrics(fraud.metrics)}", highlight=False)
    conduct = steps.train_conduct_classifier(settings, counting=rich_progress)
    console.print(
        f"{conduct.name} v{conduct.version}: {_metrics(conduct.metrics)}", highlight=False
    )


def promote_both(settings: Settings) -> None:
    from pipelines.jobs.demo import promote_to_champion

    for name in MODEL_NAMES:
        promotion = promote_to_champion(settings, name)
        console.print(f"{name} v{promotion.version} is champion", highlight=False)


@contextmanager
def served(port: int, log: Path) -> Iterator[tuple[str, str]]:
    """``riskctl serve`` in a subprocess with a one-off API key, stopped on the way out.

    Its JSON logs and console-exported spans go to ``log``, where a decision's trace can be read.
    """
    from pipelines.serving_process import port_is_free, stop_process, wait_until_ready

    if not port_is_free(port):
        raise DemoFailed(f"port {port} is in use (another service?); pass --port")
    key = secrets.token_urlsafe(16)
    url = f"http://127.0.0.1:{port}"
    # Every trace recorded, whatever sampler the caller's environment names: the demo shows one.
    env = {
        **os.environ,
        "RISK_API_KEYS": key,
        "RISK_TRACE_EXPORTER": "console",
        "OTEL_TRACES_SAMPLER": "parentbased_always_on",
    }
    command = [sys.executable, "-m", "pipelines.cli", "serve", "--port", str(port)]
    log.parent.mkdir(parents=True, exist_ok=True)
    output = log.open("w")
    process = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        with console.status(f"waiting for {url}/readyz"):
            wait_until_ready(url, process, log)
        console.print(f"service ready at {url}", highlight=False)
        yield url, key
    finally:
        stop_process(process)
        output.close()


def save_metrics(url: str, path: Path) -> Path:
    """The service's Prometheus exposition after the sample, kept for reading later."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
        path.write_bytes(response.read())
    return path


def audit_and_replay(settings: Settings, decision_ids: list[str]) -> None:
    from decisioning.adapters.audit import AuditStore
    from decisioning.wiring import build_engine

    store = AuditStore.open(settings.audit.url)
    report = store.verify()
    if not report.ok:
        raise DemoFailed(f"audit chain broken at {report.first_broken_id}: {report.reason}")
    console.print(f"audit chain intact: {report.checked:,} records", highlight=False)
    from decisioning.adapters.audit.anchoring import checkpoint_now

    # Anchor what the demo wrote, so `riskctl audit verify` finds it vouched for (ADR 0009). The
    # demo made this chain and verified it just above: it may begin the anchor (genesis).
    checkpoint = checkpoint_now(store, settings.audit.anchor, genesis=True)
    if checkpoint is not None:
        console.print(f"audit checkpoint signed at seq {checkpoint.seq}", highlight=False)
    engine = build_engine(settings)
    for decision_id in decision_ids:
        replayed = engine.replay(decision_id)
        if not replayed.identical:
            raise DemoFailed(f"replay of {decision_id} differs: {replayed.differences}")
        explained = replay_stored_explanation(store, settings, decision_id)
        if not explained.identical:
            raise DemoFailed(f"explanation of {decision_id}: {'; '.join(explained.problems)}")
    console.print(
        f"replayed all {len(decision_ids)} decisions and their explanations (stored "
        "completions, no LLM called): identical",
        highlight=False,
    )


def drift_first_vs_last(transactions: pd.DataFrame, folder: Path) -> Path:
    """The drift report of the monitor command on two windows of the simulated payments."""
    import pandas as pd

    from pipelines.commands.monitor import drift

    start, end = transactions["occurred_at"].min(), transactions["occurred_at"].max()
    folder.mkdir(parents=True, exist_ok=True)
    first = transactions[transactions["occurred_at"] < start + pd.Timedelta(days=30)]
    last = transactions[transactions["occurred_at"] > end - pd.Timedelta(days=30)]
    first.to_parquet(folder / "first_30_days.parquet", index=False)
    last.to_parquet(folder / "last_30_days.parquet", index=False)
    drift(folder / "first_30_days.parquet", folder / "last_30_days.parquet", folder / "report")
    return folder / "report"


def _metrics(metrics: dict[str, float]) -> str:
    return "  ".join(f"{key} {value:.3f}" for key, value in sorted(metrics.items()))


def _note(message: str) -> None:
    console.print(f"  {message}", highlight=False)
