"""A served process's checkpoints, taken by a child process so they never hold its interpreter.

A checkpoint verifies every record since the previous one before it signs (ADR 0009): about
60 ms of CPU a 1,000 records, all of it Python holding the GIL. Taken on a thread of the service,
that raised an append's p99 from 14 ms to 39 ms (``bench/audit_verify.py --latency-appends``);
in a process of its own, the walk runs beside the decisions rather than between them, and the
service's thread only waits on a pipe.

The protocol is one JSON line each way: the child reads its settings first (the signing key
through the pipe, never in argv or the environment), then answers each ``take`` with the
checkpoint's sequence number or the failure's kind and message. End of input stops it, so a
child whose parent died exits on its own.
"""

from __future__ import annotations

import json
import logging
import os
import select
import signal
import subprocess
import sys
import threading
from typing import IO, TYPE_CHECKING, Any

from decisioning.core.errors import AuditError
from decisioning.settings import AuditAnchorSettings

if TYPE_CHECKING:
    from decisioning.adapters.audit.store import AuditStore

logger = logging.getLogger(__name__)
# A checkpoint walks at most a few thousand records; one that takes longer than this is stuck
# (a lock held, a store unreachable): the child is stopped and the next trigger starts another.
ANSWER_TIMEOUT_SECONDS = 300.0
# What a supervisor sends a worker's children when it stops the service (checkpoint_child.py).
_SUPERVISOR_SIGNALS = {signal.SIGTERM, signal.SIGINT}


class CheckpointFailed(AuditError):
    """A checkpoint the child could not take; ``kind`` names the child's exception."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class CheckpointProcess:
    """Takes checkpoints of the store at ``url`` in a child process started on first use.

    ``may_begin`` says whether the parent saw the chain and the anchor empty when it opened the
    store, the one case in which a background checkpoint may begin an anchor (ADR 0009).
    """

    def __init__(
        self,
        url: str,
        settings: AuditAnchorSettings,
        may_begin: bool,
        timeout: float = ANSWER_TIMEOUT_SECONDS,
    ) -> None:
        self._url, self._settings, self._may_begin = url, settings, may_begin
        self._timeout = timeout
        self._child: subprocess.Popen[str] | None = None

    def take(self) -> int | None:
        """One checkpoint now: its sequence number, or None when nothing was added since."""
        child = self._child if self._child and self._child.poll() is None else self._start()
        assert child.stdin is not None and child.stdout is not None
        try:
            child.stdin.write("take\n")
            child.stdin.flush()
            answer = _read_answer(child.stdout, self._timeout)
        except (OSError, ValueError) as exc:
            self._stop(wait=0)  # dead, stuck or garbled: the next trigger starts another
            raise CheckpointFailed(type(exc).__name__, f"the checkpoint process: {exc}") from exc
        if not answer.get("ok"):
            raise CheckpointFailed(str(answer.get("kind")), str(answer.get("message")))
        # The permission to begin an anchor ends with the first checkpoint, as in the child.
        self._may_begin = bool(answer.get("may_begin"))
        seq = answer.get("seq")
        return seq if isinstance(seq, int) else None

    def close(self) -> None:
        self._stop()

    def _start(self) -> subprocess.Popen[str]:
        self._stop()
        # Started from a thread of its own with SIGTERM and SIGINT blocked there (a thread's mask
        # passes through fork and exec; checkpoint_child.py ignores both once it runs). Python runs
        # signal handlers on the main thread only, so none can raise between the block and the
        # settings line: the caller's mask is never touched, and a Ctrl-C while the caller waits
        # leaves the child started and held here, for close() to end, never lost.
        failure: list[BaseException] = []

        def spawn() -> None:
            try:
                signal.pthread_sigmask(signal.SIG_BLOCK, _SUPERVISOR_SIGNALS)
                self._child = self._spawn()
            except BaseException as exc:  # the caller raises it
                failure.append(exc)

        spawner = threading.Thread(target=spawn, name="checkpoint-spawn", daemon=True)
        spawner.start()
        spawner.join()
        if failure:
            raise failure[0]
        assert self._child is not None
        return self._child

    def _spawn(self) -> subprocess.Popen[str]:
        child = subprocess.Popen(
            [sys.executable, "-m", "decisioning.adapters.audit.checkpoint_child", str(os.getpid())],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        assert child.stdin is not None
        secret = self._settings.signing_key
        settings = {
            **self._settings.model_dump(mode="json"),
            "signing_key": secret.get_secret_value() if secret else None,
        }
        try:
            line = {"url": self._url, "anchor": settings, "may_begin": self._may_begin}
            child.stdin.write(json.dumps(line) + "\n")
            child.stdin.flush()
        except OSError:
            child.kill()  # it died before reading its settings: not one to keep
            child.wait()
            raise
        return child

    def _stop(self, wait: float = 10) -> None:
        child, self._child = self._child, None
        if child is None:
            return
        try:
            if child.stdin is not None:
                child.stdin.close()  # end of input: the child returns
            child.wait(timeout=wait)
        except (OSError, subprocess.TimeoutExpired):
            child.kill()
            child.wait()


def _read_answer(stdout: IO[str], timeout: float) -> dict[str, Any]:
    ready, _, _ = select.select([stdout], [], [], timeout)
    if not ready:
        raise OSError(f"no answer in {timeout:.0f} s")
    line = stdout.readline()
    if not line:
        raise OSError("it exited")
    answer = json.loads(line)
    if not isinstance(answer, dict):
        raise ValueError("its answer is not a JSON object")
    return answer


class GenesisWitness:
    """Checkpoints that may begin an empty anchor only over a chain seen empty.

    A process that opened the store on an empty chain and an empty anchor saw every record
    written since: it may take the first checkpoint over them. Any other process (a restart on
    a chain with records, an anchor deleted or emptied since) is refused, and says so in its
    log, until someone who checked the chain runs ``riskctl audit checkpoint --genesis``. The
    permission ends once the anchor has a checkpoint, so a later loss of it is never papered
    over.
    """

    def __init__(self, store: AuditStore, settings: AuditAnchorSettings, may_begin: bool) -> None:
        self._store, self._settings, self.may_begin = store, settings, may_begin
        self._verified: set[str] = set()  # digests of anchored checkpoints whose signature held

    def checkpoint(self) -> int | None:
        from decisioning.adapters.audit.anchoring import checkpoint_now

        written = checkpoint_now(
            self._store, self._settings, genesis=self.may_begin, verified=self._verified
        )
        if written is not None or self._store.head() is not None:
            self.may_begin = False
        return None if written is None else written.seq


def serve(lines: IO[str], answers: IO[str]) -> None:
    """The child: settings on the first line, then one answer per ``take`` until end of input."""
    from decisioning.adapters.audit.store import AuditStore

    first = json.loads(lines.readline())
    store = AuditStore.open_existing(first["url"])
    witness = GenesisWitness(
        store, AuditAnchorSettings.model_validate(first["anchor"]), bool(first["may_begin"])
    )
    try:
        for line in lines:
            if line.strip() != "take":
                continue
            try:
                answer: dict[str, Any] = {"ok": True, "seq": witness.checkpoint()}
            except Exception as exc:  # reported to the parent, which logs it once per kind
                answer = {"ok": False, "kind": type(exc).__name__, "message": str(exc)}
            answer["may_begin"] = witness.may_begin
            answers.write(json.dumps(answer) + "\n")
            answers.flush()
    finally:
        store.close()
