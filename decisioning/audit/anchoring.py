"""Take a checkpoint, and verify the chain against the anchor: the two uses of the anchor.

A checkpoint is only signed over a chain verified from the previous checkpoint, so a head
rewritten between two checkpoints is refused rather than vouched for.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from decisioning.audit.anchor import CheckpointAnchor, open_anchor
from decisioning.audit.chain import AnchoredReport, trusted_checkpoints
from decisioning.audit.checkpoint import Checkpoint, key_id, sign_checkpoint
from decisioning.audit.keys import load_signing_key, parse_private_key, trusted_public_keys
from decisioning.errors import AuditChainBroken
from decisioning.events import utc_now
from decisioning.settings import AuditAnchorSettings

if TYPE_CHECKING:
    from decisioning.audit.store import AuditStore

logger = logging.getLogger(__name__)
OVERDUE_FACTOR = 2


@dataclass(frozen=True)
class Verification:
    """A verification's outcome, with what the anchor held and where the walk began."""

    report: AnchoredReport
    anchor_problems: tuple[str, ...]
    started_at: Checkpoint | None

    @property
    def problems(self) -> tuple[str, ...]:
        return self.anchor_problems + self.report.problems

    @property
    def broken(self) -> bool:
        return self.report.broken or bool(self.anchor_problems)


def verify_against_anchor(
    store: AuditStore,
    anchor: CheckpointAnchor,
    trusted: Mapping[str, Ed25519PublicKey],
    incremental: bool = False,
) -> Verification:
    """The chain held to every valid checkpoint, or, ``incremental``, from the latest one on."""
    checkpoints, anchor_problems = trusted_checkpoints(anchor.read(), trusted)
    start = checkpoints[-1] if incremental and checkpoints else None
    report = store.verify_anchored(checkpoints, start)
    return Verification(report, tuple(anchor_problems), start)


def write_checkpoint(
    store: AuditStore,
    anchor: CheckpointAnchor,
    signing_key: Ed25519PrivateKey,
    trusted: Mapping[str, Ed25519PublicKey],
    now: datetime | None = None,
) -> Checkpoint | None:
    """Sign the chain's head and anchor it; None when nothing was added since the last one.

    Holds the anchor exclusively while it verifies the records since the latest checkpoint and
    signs, so checkpoints taken at once by several processes still follow one another.
    """
    trusted = {**trusted, key_id(signing_key.public_key()): signing_key.public_key()}
    with anchor.appending() as entries:
        checkpoints, problems = trusted_checkpoints(entries, trusted)
        latest = checkpoints[-1] if checkpoints else None
        report = store.verify_anchored(checkpoints[-1:], start=latest)
        problems += report.problems
        if not report.chain.ok:
            problems.append(f"row {report.chain.first_broken_seq}: {report.chain.reason}")
        if problems:
            raise AuditChainBroken(
                "no checkpoint taken over a chain that does not verify: " + "; ".join(problems)
            )
        head = report.head
        if head is None or (latest is not None and head.seq == latest.seq):
            return None
        at = (now or utc_now()).isoformat()
        checkpoint = sign_checkpoint(head, latest, signing_key, at)
        anchor.append(checkpoint)
    logger.info(
        "audit checkpoint seq=%d records=%d key=%s",
        checkpoint.seq,
        checkpoint.records,
        checkpoint.key_id,
    )
    return checkpoint


def checkpoint_now(store: AuditStore, settings: AuditAnchorSettings) -> Checkpoint | None:
    """One checkpoint with the profile's key and anchor (``riskctl audit checkpoint``)."""
    signing_key = load_signing_key(settings)
    trusted = trusted_public_keys(settings.public_keys)
    return write_checkpoint(store, open_anchor(settings), signing_key, trusted)


def verifying_keys(
    settings: AuditAnchorSettings, source: str | None = None
) -> dict[str, Ed25519PublicKey]:
    """The public keys a verification trusts: ``source`` (or the profile's), plus the public half
    of the signing key when the environment holds it. No key is ever made here."""
    trusted = trusted_public_keys(settings.public_keys if source is None else source)
    pem = settings.signing_key.get_secret_value() if settings.signing_key else ""
    if pem.strip():
        public = parse_private_key(pem).public_key()
        trusted[key_id(public)] = public
    return trusted


def unanchored_overdue(
    report: AnchoredReport, settings: AuditAnchorSettings, now: datetime
) -> bool:
    """Whether the unanchored tail is larger or older than the checkpoint cadence allows.

    A healthy checkpointer leaves at most ``every_records`` records or ``every_seconds`` of them
    unanchored; twice that leaves room for a checkpoint that is due but still being written.
    """
    if report.unanchored == 0 or report.oldest_unanchored_at is None:
        return False
    if report.unanchored > OVERDUE_FACTOR * settings.every_records:
        return True
    age = now - datetime.fromisoformat(report.oldest_unanchored_at)
    return age.total_seconds() > OVERDUE_FACTOR * settings.every_seconds
