"""bench/load.py counts what the answers say, not only their status: a degraded decision is a
200 that skipped a component's work, so a run that answered with them would look fast."""

import asyncio
import json

from bench.load import is_degraded, run

WHOLE = {"action": "approve", "degraded": [], "explanation": {"reasons": []}}
DEGRADED = {
    "action": "review",
    "degraded": [{"component": "timeout", "cause": "conduct scorer: NoEventLoopError"}],
}


def test_an_empty_degraded_list_is_not_degraded() -> None:
    assert not is_degraded(json.dumps(WHOLE, separators=(",", ":")).encode())
    assert is_degraded(json.dumps(DEGRADED, separators=(",", ":")).encode())
    assert not is_degraded(b'{"score":0.1}')  # an answer without the field: the scorer's route
    assert not is_degraded(b"")


async def _serve_and_load(answers: list[bytes], chunked: bool) -> dict[str, object]:
    served = 0

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal served
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                await reader.readexactly(length)
                body = answers[served % len(answers)]
                served += 1
                if chunked:  # two chunks, as a streaming server might send
                    half = len(body) // 2
                    chunks = b"".join(
                        b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:half], body[half:])
                    )
                    writer.write(
                        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                        + chunks
                        + b"0\r\n\r\n"
                    )
                else:
                    writer.write(
                        b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
                    )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        return await run(
            f"http://127.0.0.1:{port}/v1/decisions", "key", [b"{}"], 100, 0.3, connections=2
        )


def test_the_generator_counts_degraded_answers_apart() -> None:
    answers = [json.dumps(body, separators=(",", ":")).encode() for body in (WHOLE, DEGRADED)]
    for chunked in (False, True):
        result = asyncio.run(_serve_and_load(answers, chunked))
        assert result["statuses"] == {"200": 30}
        assert result["degraded"] == 15
