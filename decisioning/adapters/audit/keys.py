"""The checkpoint signing key and the public keys a verifier trusts.

The private key comes from the environment's secrets (PEM); only the ``local`` profile may make
one on first use, under ``RISK_HOME/keys`` with owner-only permissions. Verification needs public
keys only, so an auditor can check the anchor without any secret.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
    load_pem_public_key,
)

from decisioning.adapters.audit.checkpoint import key_id
from decisioning.core.errors import SigningKeyUnavailable, TrustedKeysUnavailable
from decisioning.settings import AuditAnchorSettings

logger = logging.getLogger(__name__)

PRIVATE_KEY_FILE = "audit-signing.key"
PUBLIC_KEY_SUFFIX = ".pub"
_PEM_START = "-----BEGIN"


def private_key_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())


def public_key_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)


def parse_private_key(pem: str) -> Ed25519PrivateKey:
    try:
        key = load_pem_private_key(pem.encode("utf-8"), password=None)
    except ValueError as exc:
        raise SigningKeyUnavailable("the audit signing key is not a PEM private key") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyUnavailable("the audit signing key is not an Ed25519 key")
    return key


def write_key_pair(folder: Path) -> Ed25519PrivateKey:
    """A new key pair in ``folder``: the private key 0600, the public key beside it by key id."""
    folder.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    private_path = folder / PRIVATE_KEY_FILE
    # O_EXCL: two processes starting at once must not each write a key and sign with both.
    descriptor = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as private_file:
        private_file.write(private_key_pem(key))
    _write_public_key(folder, key)
    return key


def _write_public_key(folder: Path, key: Ed25519PrivateKey) -> None:
    """``<key id>.pub`` beside the private key, unless it is there: a key replaced by hand (the
    runbook's rotation in ``local``) gets its public half where verifiers look for it."""
    public = key.public_key()
    path = folder / f"{key_id(public)}{PUBLIC_KEY_SUFFIX}"
    if not path.exists():
        path.write_bytes(public_key_pem(public))


def load_signing_key(anchor: AuditAnchorSettings) -> Ed25519PrivateKey:
    """The key checkpoints are signed with; raises ``SigningKeyUnavailable`` if there is none."""
    pem = anchor.signing_key.get_secret_value() if anchor.signing_key else ""
    if pem.strip():
        return parse_private_key(pem)
    if anchor.generated_key_dir is None:
        raise SigningKeyUnavailable(
            "no audit signing key: set RISK_AUDIT_SIGNING_KEY to an Ed25519 private key in PEM "
            "(riskctl audit keygen makes one); checkpoints are refused without it"
        )
    folder = Path(anchor.generated_key_dir)
    private_path = folder / PRIVATE_KEY_FILE
    if private_path.exists():
        key = parse_private_key(private_path.read_text())
        _write_public_key(folder, key)
        return key
    try:
        key = write_key_pair(folder)
    except FileExistsError:  # another process made it first
        return parse_private_key(private_path.read_text())
    logger.warning(
        "generated a new audit signing key at %s (key id %s); keep it private and keep its "
        "public key to verify checkpoints",
        private_path,
        key_id(key.public_key()),
    )
    return key


def trusted_public_keys(source: str, must_exist: bool = True) -> dict[str, Ed25519PublicKey]:
    """Public keys by key id, from PEM text, a ``.pub`` file, or a folder of ``.pub`` files.

    A path that does not exist raises ``TrustedKeysUnavailable`` (``must_exist``): a mistyped
    path must not read as "no keys". These keys are the root of trust: whoever can add one can
    sign checkpoints that pass, so they must come from a source the verifier trusts (ADR 0009).
    """
    if not source.strip():
        return {}
    if source.lstrip().startswith(_PEM_START):
        texts = [source]
    else:
        path = Path(source)
        if path.is_dir():
            texts = [p.read_text() for p in sorted(path.glob(f"*{PUBLIC_KEY_SUFFIX}"))]
        elif path.is_file():
            texts = [path.read_text()]
        elif must_exist:
            raise TrustedKeysUnavailable(f"no public key file or folder at {path}")
        else:
            texts = []
    keys: dict[str, Ed25519PublicKey] = {}
    for text in texts:
        for block in _pem_blocks(text):
            public = load_pem_public_key(block.encode("utf-8"))
            if isinstance(public, Ed25519PublicKey):
                keys[key_id(public)] = public
    return keys


def _pem_blocks(text: str) -> list[str]:
    """Each ``-----BEGIN ... -----END ...-----`` block of a text holding one or more keys."""
    blocks, current = [], []
    for line in text.splitlines():
        if line.startswith(_PEM_START):
            current = [line]
        elif current:
            current.append(line)
            if line.startswith("-----END"):
                blocks.append("\n".join(current) + "\n")
                current = []
    return blocks
