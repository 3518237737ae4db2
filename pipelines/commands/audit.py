"""``riskctl audit``: verify and checkpoint the hash chain, export decisions for reviewers."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

if TYPE_CHECKING:
    from decisioning.adapters.audit import AuditStore
    from decisioning.adapters.audit.anchoring import Verification
    from decisioning.adapters.llm.explanation import ExplanationReplay
    from decisioning.settings import AuditAnchorSettings, Settings

from decisioning.core.events import utc_now
from decisioning.settings import load_settings

app = typer.Typer(
    help="Verify, checkpoint, replay and export the audit trail.", no_args_is_help=True
)
console = Console()


# Exit codes of `riskctl audit verify` (docs/runbook.md).
EXIT_BROKEN = 1
EXIT_COULD_NOT_VERIFY = 2
EXIT_UNANCHORED = 3
EXIT_NO_ANCHOR = 4


def open_store() -> AuditStore:
    from decisioning.adapters.audit import AuditStore  # SQLAlchemy and Alembic load on use

    return AuditStore.open(load_settings().audit.url)


@app.command()
def verify(
    from_checkpoint: Annotated[
        bool, typer.Option("--from-checkpoint", help="verify only from the latest checkpoint on")
    ] = False,
    strict: Annotated[
        bool, typer.Option(help="any unanchored record exits 3, not only an overdue tail")
    ] = False,
    anchor: Annotated[
        Path | None, typer.Option(help="a checkpoint file (JSON lines) instead of the profile's")
    ] = None,
    public_key: Annotated[
        str | None,
        typer.Option(help="a .pub file or folder of them, trusted instead of the profile's keys"),
    ] = None,
    expect_checkpoint: Annotated[
        str | None,
        typer.Option(help="a checkpoint digest noted earlier: exit 1 unless the anchor holds it"),
    ] = None,
) -> None:
    """Recompute the chain and hold it to the signed checkpoints in the anchor.

    Exits 0 when intact (every record anchored, or only the tail the checkpoint cadence allows),
    3 when intact but more records are unanchored than that (any, with --strict, or an empty
    chain with nothing anchored), 4 when records exist and no checkpoint vouches for any of them,
    1 when broken (a row altered, removed or forged, a tail cut or rewritten, a checkpoint
    missing, unsigned, going backwards, or not the one --expect-checkpoint names), 2 when it
    could not verify (no database, an unreadable anchor, no trusted keys).
    """

    from decisioning.adapters.audit import AuditStore
    from decisioning.adapters.audit.anchor import FileAnchor, open_anchor
    from decisioning.adapters.audit.anchoring import verify_against_anchor, verifying_keys
    from decisioning.core.errors import AuditError

    settings = load_settings()
    anchor_settings = settings.audit.anchor
    try:
        if anchor is not None and not anchor.is_file():
            raise AuditError(f"no anchor file at {anchor}")
        checkpoint_anchor = FileAnchor(anchor) if anchor else open_anchor(anchor_settings)
        trusted = verifying_keys(anchor_settings, public_key)
        store = AuditStore.open_existing(settings.audit.url)
        try:
            with console.status("verifying the audit chain against its checkpoints"):
                outcome = verify_against_anchor(
                    store, checkpoint_anchor, trusted, from_checkpoint, utc_now()
                )
        finally:
            store.close()
    except AuditError as exc:
        print(f"riskctl: could not verify the audit trail: {exc}", file=sys.stderr)
        raise typer.Exit(EXIT_COULD_NOT_VERIFY) from exc
    _report_verification(outcome, anchor_settings, strict, expect_checkpoint)


def _report_verification(
    outcome: Verification,
    anchor_settings: AuditAnchorSettings,
    strict: bool,
    expect_checkpoint: str | None,
) -> None:
    """Print what verification found and exit with its code (``verify``'s docstring)."""
    from decisioning.adapters.audit.anchoring import unanchored_overdue

    report = outcome.report
    chain = report.chain
    if outcome.broken:
        if not chain.ok:
            print(
                f"riskctl: audit chain broken at row {chain.first_broken_seq} "
                f"({chain.first_broken_id}): {chain.reason}; "
                f"{chain.checked} rows before it verified",
                file=sys.stderr,
            )
        for problem in outcome.problems:
            print(f"riskctl: audit anchor: {problem}", file=sys.stderr)
        raise typer.Exit(EXIT_BROKEN)
    if expect_checkpoint is not None and expect_checkpoint not in outcome.digests:
        print(
            f"riskctl: audit anchor: the checkpoint {expect_checkpoint} is not in the anchor: "
            "it was cut back, emptied or replaced since that digest was noted",
            file=sys.stderr,
        )
        raise typer.Exit(EXIT_BROKEN)
    records = report.head.records if report.head is not None else 0
    latest = report.latest
    if latest is None:
        if records:
            print(
                f"riskctl: no anchor: nothing outside the database vouches for these "
                f"{records:,} records (no signed checkpoint); their hash chain alone proves "
                "nothing against whoever can rewrite the database (docs/runbook.md)",
                file=sys.stderr,
            )
            raise typer.Exit(EXIT_NO_ANCHOR)
        console.print("the audit chain is empty and no checkpoint is anchored", highlight=False)
        if strict:
            raise typer.Exit(EXIT_UNANCHORED)
        return
    where = (
        f"from seq {outcome.started_at.seq} on (earlier rows not checked)"
        if outcome.started_at is not None
        else "from the first record"
    )
    console.print(
        f"audit chain intact {where}: {chain.checked:,} records verified, "
        f"{report.checkpoints:,} signed checkpoints",
        highlight=False,
    )
    console.print(
        f"latest checkpoint: seq {latest.seq}, signed {latest.checkpointed_at} by key "
        f"{latest.key_id}; note its digest and pass it as --expect-checkpoint next time, which "
        "catches an anchor cut back before it:",
        highlight=False,
    )
    console.print(f"digest {latest.digest()}", highlight=False, soft_wrap=True)
    if report.unanchored == 0:
        console.print("every record is anchored by a signed checkpoint", highlight=False)
        return
    overdue = unanchored_overdue(report, anchor_settings, utc_now())
    console.print(
        f"{report.unanchored:,} records after the latest checkpoint are not anchored yet"
        + ("; that is more than the checkpoint cadence leaves" if overdue else ""),
        highlight=False,
    )
    if overdue or strict:
        raise typer.Exit(EXIT_UNANCHORED)


@app.command()
def checkpoint(
    genesis: Annotated[
        bool,
        typer.Option(
            help="allow the first checkpoint of an empty anchor over records already written "
            "(check the chain against an independent copy first: it vouches for them as they are)"
        ),
    ] = False,
) -> None:
    """Sign the chain's head now and write it to the anchor (after verifying what is new)."""
    from decisioning.adapters.audit.anchoring import checkpoint_now
    from decisioning.core.errors import AuditError

    settings = load_settings()
    try:
        written = checkpoint_now(open_store(), settings.audit.anchor, genesis=genesis)
    except AuditError as exc:
        print(f"riskctl: {exc}", file=sys.stderr)
        raise typer.Exit(1) from exc
    if written is None:
        console.print("nothing new to anchor since the last checkpoint", highlight=False)
        return
    console.print(
        f"checkpoint written: seq {written.seq}, {written.records:,} records, key "
        f"{written.key_id}, digest {written.digest()}",
        highlight=False,
    )


@app.command()
def migrate() -> None:
    """Bring the audit schema to the latest migration as the owner role (``audit.owner_url``)."""
    from decisioning.adapters.audit import AuditStore

    settings = load_settings()
    url = settings.audit.owner_url or settings.audit.url
    AuditStore.open(url).close()
    console.print("audit schema at the latest migration", highlight=False)


@app.command()
def keygen(
    out: Annotated[Path, typer.Option(help="folder for the new key pair")],
) -> None:
    """Make a new checkpoint signing key pair: the private key (0600) and `<key id>.pub`."""
    from decisioning.adapters.audit.checkpoint import key_id
    from decisioning.adapters.audit.keys import PRIVATE_KEY_FILE, write_key_pair

    try:
        key = write_key_pair(out)
    except FileExistsError as exc:
        print(f"riskctl: {out / PRIVATE_KEY_FILE} exists; choose an empty folder", file=sys.stderr)
        raise typer.Exit(1) from exc
    console.print(
        f"key {key_id(key.public_key())}: private key {out / PRIVATE_KEY_FILE}, "
        f"public key {out / (key_id(key.public_key()) + '.pub')}",
        highlight=False,
    )


@app.command()
def replay(decision_id: Annotated[str, typer.Argument(help="the decision to recompute")]) -> None:
    """Recompute a decision from what it stored; print every difference and exit 1 if any."""
    from decisioning.wiring import build_engine

    settings = load_settings()
    with console.status("loading the models the decision names"):
        engine = build_engine(settings)
    try:
        report = engine.replay(decision_id)
    except LookupError as exc:
        print(f"riskctl: {exc.args[0]}", file=sys.stderr)
        raise typer.Exit(1) from exc
    explained = replay_stored_explanation(engine.audit, settings, decision_id)
    if report.identical:
        console.print(
            f"decision {decision_id} replayed: identical "
            f"(action, score, category, reasons, policy version)",
            highlight=False,
        )
    for field, (stored, recomputed) in report.differences.items():
        console.print(f"{field}: stored {stored!r}, recomputed {recomputed!r}", highlight=False)
    if explained.explanation is not None:
        console.print(
            f"explanation ({explained.explanation.prompt_version}, stored completion reused, "
            f"no LLM called): {explained.explanation.output}",
            highlight=False,
        )
    for problem in explained.problems:
        console.print(f"explanation: {problem}", highlight=False)
    if not report.identical or not explained.identical:
        print(f"riskctl: decision {decision_id} differs on replay", file=sys.stderr)
        raise typer.Exit(1)


def replay_stored_explanation(
    store: AuditStore, settings: Settings, decision_id: str
) -> ExplanationReplay:
    """The decision's stored explanation checked against its prompt version; no provider."""
    from decisioning.adapters.llm.explanation import replay_explanation
    from decisioning.core.decision import RiskDecision

    record = store.get(decision_id)
    if record is None:
        raise LookupError(f"no decision {decision_id!r} in the audit store")
    decision = RiskDecision.model_validate(record.body["decision"])
    return replay_explanation(store, decision, settings.config_path("configs/prompts"))


@app.command()
def export(
    out: Annotated[Path, typer.Option(help="a .parquet or .jsonl file")],
    kind: Annotated[str, typer.Option(help="record kind to export")] = "decision",
) -> None:
    """Write records as Parquet or JSON lines, one row per record with its hashes."""
    import pandas as pd

    rows = [
        {
            "seq": record.seq,
            "record_id": record.record_id,
            "recorded_at": record.recorded_at,
            "row_hash": record.row_hash,
            "prev_hash": record.prev_hash,
            **{key: _cell(value) for key, value in record.body.items()},
        }
        for record in open_store().records(kind=kind)
    ]
    frame = pd.DataFrame(rows)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".parquet":
        frame.to_parquet(out, index=False)
    elif out.suffix in (".jsonl", ".json"):
        frame.to_json(out, orient="records", lines=True)
    else:
        raise typer.BadParameter("use a .parquet or .jsonl file", param_hint="--out")
    console.print(f"exported {len(frame):,} {kind} records to {out}", highlight=False)


def _cell(value: object) -> object:
    """Nested values become JSON text so every row has the same flat columns."""
    import json

    return json.dumps(value, sort_keys=True) if isinstance(value, dict | list) else value
