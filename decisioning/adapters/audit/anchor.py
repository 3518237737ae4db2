"""Anchors: where checkpoints live, outside the audit database and out of its administrator's reach.

``file`` (profiles ``local`` and ``services``) appends JSON lines to a file of its own, one
checkpoint a line, under an exclusive lock so processes checkpointing at once keep one order.
``s3`` (profile ``aws``) is an S3 bucket with Object Lock in compliance mode (infra/stacks/data.py),
one object per checkpoint at ``<prefix>/<n:012d>.json``, n counting from 1. Each is written with
``If-None-Match: *``, S3's conditional write, so two tasks checkpointing at once cannot both take
the n-th place: the one that loses re-reads the anchor next time. Object Lock keeps every object
for the retention period, from the account's root user too. boto3 finds the endpoint and the
credentials the usual way (``AWS_ENDPOINT_URL_S3`` points the tests at moto's local server).
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

from decisioning.adapters.audit.checkpoint import Checkpoint
from decisioning.core.errors import AnchorUnavailable
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


class S3Anchor:
    """Checkpoints as objects numbered in order under one prefix of an Object Lock bucket."""

    def __init__(self, uri: str, client: Any | None = None) -> None:
        parsed = urlparse(uri)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise AnchorUnavailable(f"an s3 anchor is s3://BUCKET/PREFIX, not {uri!r}")
        self.uri = uri
        self.bucket = parsed.netloc
        self.prefix = parsed.path.strip("/")
        self._client = client
        self._next = 1

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client("s3")
        return self._client

    def _key(self, number: int) -> str:
        return f"{self.prefix}/{number:012d}.json" if self.prefix else f"{number:012d}.json"

    def read(self) -> list[Checkpoint | str]:
        return self._load()[1]

    def _load(self) -> tuple[list[str], list[Checkpoint | str]]:
        """The objects' keys in order, and what they hold; a gap in the numbering is a problem."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            keys = sorted(self._keys())
            bodies = [
                self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read().decode("utf-8")
                for key in keys
            ]
        except (BotoCoreError, ClientError) as exc:
            raise AnchorUnavailable(f"cannot read the anchor {self.uri}: {exc}") from exc
        entries: list[Checkpoint | str] = []
        for number, (key, body) in enumerate(zip(keys, bodies, strict=True), 1):
            if key != self._key(number):
                entries.append(f"anchor object {number} is {key}, not {self._key(number)}")
            entries.append(_parse(number, body.strip()))
        return keys, entries

    def _keys(self) -> Iterator[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=f"{self.prefix}/" if self.prefix else ""
        )
        for page in pages:
            for item in page.get("Contents", []):
                if item["Key"].endswith(".json"):
                    yield item["Key"]

    @contextmanager
    def appending(self) -> Iterator[list[Checkpoint | str]]:
        # No lock to hold: the conditional write of the next number is the compare-and-swap.
        keys, entries = self._load()
        self._next = len(keys) + 1
        yield entries

    def append(self, checkpoint: Checkpoint) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        key = self._key(self._next)
        try:
            self.client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=(checkpoint.to_json() + "\n").encode("utf-8"),
                ContentType="application/json",
                IfNoneMatch="*",
            )
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in {"PreconditionFailed", "ConditionalRequestConflict"}:
                raise AnchorUnavailable(
                    f"another writer took {key} first; the next checkpoint will follow it"
                ) from exc
            raise AnchorUnavailable(f"cannot write {key} to {self.uri}: {exc}") from exc
        except BotoCoreError as exc:
            raise AnchorUnavailable(f"cannot write {key} to {self.uri}: {exc}") from exc
        self._next += 1


def open_anchor(settings: AuditAnchorSettings) -> CheckpointAnchor:
    """The anchor the profile names."""
    if settings.kind == "file":
        return FileAnchor(Path(settings.location))
    return S3Anchor(settings.location)
