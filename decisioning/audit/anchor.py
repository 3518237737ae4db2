"""Anchors: where checkpoints live, outside the audit database and out of its administrator's reach.

``file`` (profiles ``local`` and ``services``) appends JSON lines to a file of its own, one
checkpoint a line, under an exclusive lock so processes checkpointing at once keep one order.
``s3`` (profile ``aws``) is an S3 bucket with Object Lock in compliance mode, one object per
checkpoint at ``<prefix>/<seq:020d>-<key id>.json`` (infra/stacks/data.py). Its writer needs
boto3, which is not in requirements.lock, so it is not built yet: :func:`open_anchor` refuses it
with a message that says so (ADR 0009).
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

from decisioning.audit.checkpoint import Checkpoint
from decisioning.errors import AnchorUnavailable
from decisioning.settings import AuditAnchorSettings

logger = logging.getLogger(__name__)


class CheckpointAnchor(Protocol):
    """Append-only storage for checkpoints, read back in the order they were written."""

    def read(self) -> list[Checkpoint | str]:
        """Every checkpoint in order; a line that is not a checkpoint comes back as its problem."""
        ...

    @contextmanager
    def appending(self) -> Iterator[list[Checkpoint | str]]:
        """Hold the anchor exclusively; yields what it holds, and ``append`` may be called."""
        ...

    def append(self, checkpoint: Checkpoint) -> None: ...


class FileAnchor:
    """Checkpoints as JSON lines in one file, appended and flushed to disk one at a time."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> list[Checkpoint | str]:
        if not self.path.exists():
            return []
        try:
            text = self.path.read_text(encoding="utf-8")
        except OSError as exc:
            raise AnchorUnavailable(f"cannot read the anchor {self.path}: {exc}") from exc
        return [_parse(number, line) for number, line in enumerate(text.splitlines(), 1)]

    @contextmanager
    def appending(self) -> Iterator[list[Checkpoint | str]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.path.with_name(self.path.name + ".lock")
        with lock_path.open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield self.read()
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def append(self, checkpoint: Checkpoint) -> None:
        line = (checkpoint.to_json() + "\n").encode("utf-8")
        descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(descriptor, line)
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def _parse(number: int, line: str) -> Checkpoint | str:
    try:
        return Checkpoint.from_json(line)
    except ValueError as exc:
        return f"anchor line {number} is not a checkpoint ({exc})"


def open_anchor(settings: AuditAnchorSettings) -> CheckpointAnchor:
    """The anchor the profile names."""
    if settings.kind == "file":
        return FileAnchor(Path(settings.location))
    raise AnchorUnavailable(
        f"the s3 anchor ({settings.location}) needs boto3, which requirements.lock does not "
        "install; see docs/adr/0009-audit-anchor.md"
    )
