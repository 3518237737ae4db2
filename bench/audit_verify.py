"""Audit verification throughput on PostgreSQL: records a second, whole chain and incremental.

Fills a throw-away database with ``--records`` decision-sized records (group-committed by eight
threads, as the service appends), takes a signed checkpoint, then times ``verify_against_anchor``
over the whole chain (every hash recomputed, every checkpoint held) and from the latest checkpoint
after ``--records // 10`` more. First, side by side, the latency of one append (eight threads
appending, as the service's workers do) with background checkpoints taken in a child process (the
served way), on a thread of the appending process (the way before it), and off, in rotating
blocks: the checkpoint must stay off the decision path. The database is dropped at
the end.
Run: .venv/bin/python bench/audit_verify.py [--records 50000] [--repeat 3] [--latency-appends 6000]
     [--every-records 1000]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import psycopg
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import SecretStr

from decisioning.adapters.audit import AuditStore
from decisioning.adapters.audit.anchor import FileAnchor
from decisioning.adapters.audit.anchoring import verify_against_anchor, write_checkpoint
from decisioning.adapters.audit.checkpoint import key_id
from decisioning.adapters.audit.checkpoint_process import GenesisWitness
from decisioning.adapters.audit.roles import AuditRoles
from decisioning.settings import AuditAnchorSettings, AuditSettings

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"
# About the size of a fraud decision's body: scores, reasons, features, versions.
BODY = {
    "action": "review",
    "risk_score": 0.4321,
    "reason_codes": ["velocity.1h", "terminal.watch", "amount.above_habit"],
    "features": {f"feature_{i}": i * 1.5 for i in range(24)},
    "model_versions": {"fraud": "7", "conduct": "3", "policy": "2026-11"},
}


def fill(store: AuditStore, first: int, count: int) -> None:
    with ThreadPoolExecutor(8) as pool:
        list(
            pool.map(lambda i: store.append("decision", f"d{i}", BODY), range(first, first + count))
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--latency-appends", type=int, default=6000)
    parser.add_argument("--every-records", type=int, default=1000, help="checkpoint cadence")
    args = parser.parse_args()
    name, suffix = f"risk_bench_audit_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex[:8]
    roles = AuditRoles(owner=f"bench_owner_{suffix}", service=f"bench_service_{suffix}")
    with psycopg.connect(ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        with tempfile.TemporaryDirectory() as folder:
            url = f"{SERVER}/{name}"
            AuditStore.open(url, roles=roles).close()  # migrated with this run's roles
            append_latency(url, Path(folder), args.latency_appends, args.every_records)
            run(url, roles, Path(folder), args.records, args.repeat)
    finally:
        with psycopg.connect(ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            for role in (roles.service, roles.owner):
                admin.execute(f"DROP ROLE IF EXISTS {role}")


def append_latency(
    url: str, folder: Path, appends: int, every_records: int, blocks: int = 6
) -> None:
    """p50 and p99 of one append with checkpoints in a child, on a thread, and off.

    Each mode checkpoints every ``every_records`` of its own appends (or 60 s), and each walk
    covers every record since its last checkpoint, the other modes' too: a heavier walk than a
    service's, alike for both.
    """
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    anchor = AuditAnchorSettings(
        kind="file",
        location=str(folder / "latency-checkpoints.jsonl"),
        signing_key=SecretStr(pem.decode()),
        every_records=every_records,
        every_seconds=60.0,
    )
    # The served way: the walk and the signature in a child process (checkpoint_process.py).
    in_child = AuditStore.from_settings(AuditSettings(url=url, anchor=anchor))
    # The way before it: the same checkpoints on a thread of the appending process.
    threaded_anchor = anchor.model_copy(
        update={"location": str(folder / "threaded-checkpoints.jsonl")}
    )
    in_thread = AuditStore.open(url)
    witness = GenesisWitness(in_thread, threaded_anchor, may_begin=in_thread.head() is None)
    in_thread.checkpoint_in_background(witness.checkpoint, threaded_anchor)
    plain = AuditStore.open(url)
    stores = {"checkpoints in a child process": in_child, "on a thread": in_thread, "off": plain}
    times: dict[str, list[float]] = {mode: [] for mode in stores}
    for number, store in enumerate(stores.values()):  # warm connections, untimed
        timed_appends(store, f"warm-{number}", 200)
    order = list(stores.items())
    per_block = appends // blocks
    for block in range(blocks):  # rotating which mode goes first, so load falls alike
        for number, (mode, store) in enumerate(order[block % 3 :] + order[: block % 3]):
            times[mode] += timed_appends(store, f"l{block}-{number}", per_block)
    for store in stores.values():
        store.close()
    for mode, values in times.items():
        p50, p99 = np.percentile(np.array(values) * 1000, [50, 99])
        print(f"append, {mode}: p50 {p50:.2f} ms, p99 {p99:.2f} ms ({len(values):,} appends)")
    for name in ("latency-checkpoints.jsonl", "threaded-checkpoints.jsonl"):
        written = len((folder / name).read_text().splitlines())
        print(f"checkpoints written meanwhile to {name}: {written}")


def timed_appends(store: AuditStore, prefix: str, count: int) -> list[float]:
    def one(i: int) -> float:
        started = time.perf_counter()
        store.append("decision", f"{prefix}-{i}", BODY)
        return time.perf_counter() - started

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(count)))


def run(url: str, roles: AuditRoles, folder: Path, records: int, repeat: int) -> None:
    store = AuditStore.open(url, roles=roles)
    key = Ed25519PrivateKey.generate()
    trusted = {key_id(key.public_key()): key.public_key()}
    anchor = FileAnchor(folder / "checkpoints.jsonl")
    started = time.perf_counter()
    fill(store, 0, records)
    print(f"filled {records:,} records in {time.perf_counter() - started:.1f} s")
    write_checkpoint(store, anchor, key, trusted, genesis=True)  # the chain it just wrote
    whole = timed(lambda: verify_against_anchor(store, anchor, trusted), records, repeat)
    print(f"whole chain: {whole:,.0f} records/s (median of {repeat})")
    extra = records // 10
    fill(store, records, extra)
    since = timed(
        lambda: verify_against_anchor(store, anchor, trusted, incremental=True), extra, repeat
    )
    print(f"from the latest checkpoint ({extra:,} new): {since:,.0f} records/s")
    started = time.perf_counter()
    write_checkpoint(store, anchor, key, trusted)
    print(f"checkpoint over {extra:,} new records: {time.perf_counter() - started:.2f} s")
    store.close()


def timed(verify, records: int, repeat: int) -> float:
    rates = []
    for _ in range(repeat):
        started = time.perf_counter()
        outcome = verify()
        elapsed = time.perf_counter() - started
        assert not outcome.broken, outcome.problems
        rates.append(records / elapsed)
    return statistics.median(rates)


if __name__ == "__main__":
    main()
