"""An open-loop HTTP load generator: requests sent on a fixed schedule, whatever the answers do.

Run as its own process so the load does not share an interpreter with what it measures:
``python -m bench.load URL KEY BODIES.json --rate 200 --seconds 60``. Each latency runs from the
request's scheduled send time to the end of its response, so a stalled server cannot hide its
queue (no coordinated omission, as in wrk2). Prints one JSON object: latencies in ms, statuses,
the answers that were degraded decisions (``is_degraded``), the achieved rate and the share of a
core the generator took (about 4% at 200 requests a second under uvloop; Debian's httperf
busy-polls a third of a core at that rate, and hey sends one body on a closed loop,
docs/benchmarks.md).

Connections are opened one at a time and each is replaced after ``--reconnect-every`` requests,
as clients behind a load balancer come and go. A server whose worker processes share one
listening socket balances connections, not requests: 32 connections opened in one burst were
all accepted by whichever worker woke first (90-99% of the requests went to one of two workers),
which measured one core where the service has two.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
import time
from collections.abc import Coroutine
from typing import Any
from urllib.parse import urlsplit

DEGRADED_MARK = b'"degraded":[{'


async def _send(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[int, bytes]:
    """One request on an open connection: the answer's status and its body."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])  # "HTTP/1.1 200 OK"
    lowered = head.lower()
    start = lowered.find(b"\r\ncontent-length:")
    if start >= 0:
        end = lowered.index(b"\r\n", start + 2)
        return status, await reader.readexactly(int(head[start + 17 : end]))
    chunks = []
    if b"\r\ntransfer-encoding: chunked" in lowered:
        while size := int((await reader.readuntil(b"\r\n")).strip(), 16):
            chunks.append((await reader.readexactly(size + 2))[:-2])
        await reader.readuntil(b"\r\n")
    return status, b"".join(chunks)


def is_degraded(body: bytes) -> bool:
    """Whether an answer is a decision taken with a component missing: its ``degraded`` list is
    not empty (the service's JSON is compact). Such an answer is a 200 and can be fast, because
    the failed part's work was never done, so a run counts them apart."""
    return DEGRADED_MARK in body


async def run(
    url: str,
    key: str,
    bodies: list[bytes],
    rate: float,
    seconds: float,
    connections: int,
    reconnect_every: int = 100,
) -> dict[str, object]:
    target = urlsplit(url)
    path = target.path or "/v1/decisions"
    requests = [
        (
            f"POST {path} HTTP/1.1\r\nHost: {target.netloc}\r\nAuthorization: Bearer {key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        + body
        for body in bodies
    ]
    queue: asyncio.Queue[tuple[int, float] | None] = asyncio.Queue()
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    degraded = 0

    async def worker(opened: asyncio.Event) -> None:
        nonlocal degraded
        reader, writer = await asyncio.open_connection(target.hostname, target.port)
        opened.set()
        sent = 0
        while (job := await queue.get()) is not None:
            index, scheduled = job
            try:
                status, body = await _send(reader, writer, requests[index % len(requests)])
            except (OSError, asyncio.IncompleteReadError, ValueError):
                status, body = 0, b""  # the connection is unusable: reopened below
            degraded += is_degraded(body)
            latencies.append((time.perf_counter() - scheduled) * 1e3)
            statuses[str(status)] = statuses.get(str(status), 0) + 1
            sent += 1
            if status == 0 or (reconnect_every and sent >= reconnect_every):
                writer.close()
                reader, writer = await asyncio.open_connection(target.hostname, target.port)
                sent = 0
        writer.close()

    workers = []
    for _ in range(connections):  # one at a time: each accept is a worker's own wake-up
        opened = asyncio.Event()
        workers.append(asyncio.create_task(worker(opened)))
        await opened.wait()
        await asyncio.sleep(0.005)
    total = int(rate * seconds)
    # No cyclic garbage collection while sending: requests make no cycles worth collecting, and
    # its passes cost a tenth of the generator's CPU (4.3% of a core against 4.9%).
    gc.disable()
    cpu_started = time.process_time()
    start = time.perf_counter()
    for index in range(total):
        scheduled = start + index / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        queue.put_nowait((index, scheduled))
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)
    elapsed = time.perf_counter() - start
    gc.enable()
    return {
        "latencies_ms": latencies,
        "statuses": statuses,
        "degraded": degraded,
        "achieved_rps": total / elapsed,
        # The share of one core the generator itself took while sending (start-up excluded).
        "generator_core_share": (time.process_time() - cpu_started) / elapsed,
    }


def _event_loop_run(main: Coroutine[Any, Any, dict[str, object]]) -> dict[str, object]:
    """uvloop when installed (uvicorn brings it): a third of asyncio's CPU a request, so the
    generator takes under 5% of a core at 200 requests a second (docs/benchmarks.md)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="e.g. http://127.0.0.1:3000/v1/decisions")
    parser.add_argument("key")
    parser.add_argument("bodies", help="a JSON file holding a list of request bodies")
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--reconnect-every", type=int, default=100, help="requests a connection serves (0: all)"
    )
    args = parser.parse_args(argv)
    with open(args.bodies) as handle:
        bodies = [json.dumps(body).encode() for body in json.load(handle)]
    result = _event_loop_run(
        run(
            args.url,
            args.key,
            bodies,
            args.rate,
            args.seconds,
            args.connections,
            args.reconnect_every,
        )
    )
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
