"""Signed checkpoints: the chain's head, signed with Ed25519 by a key the database never sees.

A checkpoint names the head's sequence number and row hash, how many records the chain held up to
it, when it was taken, and the hash of the checkpoint before it, so checkpoints form a chain of
their own. Whoever can rewrite the audit table cannot forge one, which is what catches a cut or
rewritten tail: the hash chain alone cannot, since a recomputed tail is a valid chain.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from decisioning.core.decision import canonical_json, sha256_hex

NO_CHECKPOINT = "0" * 64  # ``previous`` of the first checkpoint


@dataclass(frozen=True)
class ChainHead:
    """The last record of the chain as the database holds it now."""

    seq: int
    row_hash: str
    records: int


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    row_hash: str
    records: int
    checkpointed_at: str
    previous: str
    key_id: str
    signature: str

    def signed_text(self) -> str:
        """What the signature covers: every field but the signature itself."""
        fields = asdict(self)
        del fields["signature"]
        return canonical_json(fields)

    def digest(self) -> str:
        """What the next checkpoint names as ``previous``."""
        return sha256_hex(canonical_json(asdict(self)))

    def to_json(self) -> str:
        return canonical_json(asdict(self))

    @classmethod
    def from_json(cls, line: str) -> Checkpoint:
        """Parse one anchored line; a field missing or of the wrong type raises ``ValueError``."""
        raw: Any = json.loads(line)
        if not isinstance(raw, dict):
            raise ValueError("a checkpoint is a JSON object")
        try:
            return cls(
                seq=_typed(raw, "seq", int),
                row_hash=_typed(raw, "row_hash", str),
                records=_typed(raw, "records", int),
                checkpointed_at=_typed(raw, "checkpointed_at", str),
                previous=_typed(raw, "previous", str),
                key_id=_typed(raw, "key_id", str),
                signature=_typed(raw, "signature", str),
            )
        except KeyError as exc:
            raise ValueError(f"a checkpoint lacks {exc.args[0]!r}") from exc


def _typed(raw: dict[str, Any], name: str, kind: type) -> Any:
    value = raw[name]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ValueError(f"checkpoint field {name!r} is not {kind.__name__}")
    return value


def key_id(public_key: Ed25519PublicKey) -> str:
    """A short, stable name for a public key: the first 16 hex digits of its SHA-256."""
    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return sha256_hex(raw.hex())[:16]


def sign_checkpoint(
    head: ChainHead, previous: Checkpoint | None, signing_key: Ed25519PrivateKey, at: str
) -> Checkpoint:
    """The checkpoint of ``head``, following ``previous`` and signed with ``signing_key``."""
    unsigned = Checkpoint(
        seq=head.seq,
        row_hash=head.row_hash,
        records=head.records,
        checkpointed_at=at,
        previous=NO_CHECKPOINT if previous is None else previous.digest(),
        key_id=key_id(signing_key.public_key()),
        signature="",
    )
    signature = signing_key.sign(unsigned.signed_text().encode("utf-8"))
    return Checkpoint(**{**asdict(unsigned), "signature": base64.b64encode(signature).decode()})


def signature_problem(
    checkpoint: Checkpoint, trusted: Mapping[str, Ed25519PublicKey]
) -> str | None:
    """Why the checkpoint's signature does not hold under the trusted keys, or None if it does."""
    if not checkpoint.signature:
        return "has no signature"
    public_key = trusted.get(checkpoint.key_id)
    if public_key is None:
        return f"is signed by key {checkpoint.key_id}, which is not among the trusted public keys"
    try:
        signature = base64.b64decode(checkpoint.signature, validate=True)
        public_key.verify(signature, checkpoint.signed_text().encode("utf-8"))
    except (InvalidSignature, ValueError):
        return f"has a signature that key {checkpoint.key_id} did not make over its fields"
    return None
