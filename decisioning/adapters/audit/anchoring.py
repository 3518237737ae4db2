"""Take a checkpoint, and verify the chain against the anchor: the two uses of the anchor.

A checkpoint is only signed over a chain verified from the previous checkpoint, so a head
rewritten since the previous checkpoint is refused rather than vouched for; the first checkpoint
of an anchor (the genesis) vouches for whatever the chain holds, so over records already written
it is taken only when asked for (ADR 0009).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from decisioning.adapters.audit.anchor import CheckpointAnchor, open_anchor
from decisioning.adapters.audit.chain import AnchoredReport, trusted_checkpoints
from decisioning.adapters.audit.checkpoint import Checkpoint, key_id, sign_checkpoint
from decisioning.adapters.audit.keys import load_signing_key, parse_private_key, trusted_public_keys
from decisioning.core.errors import AuditChainBroken, GenesisRefused, TrustedKeysUnavailable
from decisioning.core.events import utc_now
from decisioning.settings import AuditAnchorSettings

if TYPE_CHECKING:
    from decisioning.adapters.audit.store import AuditStore

logger = logging.getLogger(__name__)
OVERDUE_FACTOR = 2


@dataclass(frozen=True)
class Verification:
    """A verification's outcome, with what the anchor held and where the walk began."""

    report: AnchoredReport
    anchor_problems: tuple[str, ...]
    started_at: Checkpoint | None
    digests: frozenset[str] = frozenset()  # of the valid checkpoints: --expect-checkpoint

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
    now: datetime | None = None,
) -> Verification:
    """The chain held to every valid checkpoint, or, ``incremental``, from the latest one on.

    Raises ``TrustedKeysUnavailable`` when the anchor holds checkpoints and no key is trusted:
    that is a verifier without its keys, not a forged anchor.
    """
    entries = anchor.read()
    if entries and not trusted:
        raise TrustedKeysUnavailable(
            f"the anchor holds {len(entries)} checkpoints and no public key is trusted: "
            "give the keys with --public-key (or RISK_AUDIT_PUBLIC_KEYS)"
        )
    checkpoints, anchor_problems = trusted_checkpoints(entries, trusted)
    start = checkpoints[-1] if incremental and checkpoints else None
    report = store.verify_anchored(checkpoints, start, now)
    digests = frozenset(checkpoint.digest() for checkpoint in checkpoints)
    return Verification(report, tuple(anchor_problems), start, digests)


def write_checkpoint(
    store: AuditStore,
    anchor: CheckpointAnchor,
    signing_key: Ed25519PrivateKey,
    trusted: Mapping[str, Ed25519PublicKey],
    now: datetime | None = None,
    genesis: bool = False,
    verified: set[str] | None = None,
) -> Checkpoint | None:
    """Sign the chain's head and anchor it; None when nothing was added since the last one.

    Holds the anchor exclusively while it verifies the records since the latest checkpoint and
    signs, so checkpoints taken at once by several processes still follow one another. Refuses
    a key the verifiers do not trust (its checkpoints would fail every verification), and a
    first checkpoint over records already written unless ``genesis`` says it is meant.
    ``verified`` carries the digests of checkpoints whose signatures a long-lived caller has
    already checked, so each checkpoint checks only the signatures anchored since.
    """
    signing_id = key_id(signing_key.public_key())
    if signing_id not in trusted:
        raise TrustedKeysUnavailable(
            f"the signing key {signing_id} is not among the trusted public keys: its checkpoints "
            "would fail verification; add its .pub to the trusted keys first (docs/runbook.md)"
        )
    with anchor.appending() as entries:
        checkpoints, problems = trusted_checkpoints(entries, trusted, verified)
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
        if not entries and not genesis:
            raise GenesisRefused(
                f"the anchor is empty but the chain holds {head.records} records: a first "
                "checkpoint would vouch for them unchecked. If the anchor was lost, compare the "
                "chain with an independent copy of it first; then `riskctl audit checkpoint "
                "--genesis` (ADR 0009)"
            )
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


def checkpoint_now(
    store: AuditStore,
    settings: AuditAnchorSettings,
    genesis: bool = False,
    verified: set[str] | None = None,
) -> Checkpoint | None:
    """One checkpoint with the profile's key and anchor (``riskctl audit checkpoint``)."""
    signing_key = load_signing_key(settings)
    trusted = verifying_keys(settings)
    anchor = open_anchor(settings)
    return write_checkpoint(store, anchor, signing_key, trusted, genesis=genesis, verified=verified)


def verifying_keys(
    settings: AuditAnchorSettings, source: str | None = None
) -> dict[str, Ed25519PublicKey]:
    """The public keys a verification trusts: ``source`` alone when given (an auditor's own),
    else the profile's plus the public half of the signing key the environment holds. No key is
    ever made here."""
    if source is not None:
        return trusted_public_keys(source)
    # The profile's folder may not be made yet (``local`` makes it with its first key); no key
    # at all over an anchor with checkpoints still fails verification (verify_against_anchor).
    trusted = trusted_public_keys(settings.public_keys, must_exist=False)
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
    unanchored; twice that leaves room for a checkpoint that is due but still being written. The
    age is the latest checkpoint's signed time, not the records' own (their writer sets those).
    """
    if report.unanchored == 0:
        return False
    if report.latest is None or report.unanchored > OVERDUE_FACTOR * settings.every_records:
        return True
    try:
        anchored_at = datetime.fromisoformat(report.latest.checkpointed_at)
        age = now - anchored_at
    except (ValueError, TypeError):  # a signed time that is not one: no age to trust
        return True
    return age.total_seconds() > OVERDUE_FACTOR * settings.every_seconds
