"""Conduct latency: one message end to end (rules, embedding, classifier, retrieval), p50/p99.

Run: ``.venv/bin/python bench/conduct_latency.py``. A conduct model is trained on simulated texts;
each measured message is new to the embedder (no cache hit), and its end-to-end time is measured
beside the bare model forward pass on the same message in the same run. Two sets: the simulated
messages as written, and long messages (simulated messages joined, cut at 100 words). One torch
thread, as in a worker. ``--breakdown`` also times each stage, to see where the tail comes from.
``--cache sqlite`` puts the embeddings cache in a SQLite file, as the ``local`` profile serves it
(the default is the in-process cache). The load average is printed at the start and the end: the
machine may be shared, so compare end to end with the bare pass of the same run.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from decisioning.adapters.embeddings import SqliteEmbeddingCache, load_minilm_encoder
from decisioning.adapters.evidence import SqliteEvidenceIndex
from decisioning.conduct.assessment import ConductAssessor, ConductModel, quotable_sentences
from decisioning.conduct.classifier import TextClassifier
from decisioning.conduct.embeddings import Embedder, EmbeddingCache, Encoder, MemoryEmbeddingCache
from decisioning.conduct.evidence import load_policy_documents
from decisioning.conduct.rules import load_rules
from decisioning.conduct.taxonomy import load_taxonomy
from pipelines.simulate import SimulationConfig, simulate_world

ROOT = Path(__file__).resolve().parents[1]
TARGET_P99_MS = 50.0
MAX_WORDS = 100


def long_messages(texts: list[str], count: int, seed: int = 11) -> list[str]:
    """Simulated messages joined until 60-100 words, then cut at ``MAX_WORDS`` words."""
    rng = random.Random(seed)
    messages = []
    for _ in range(count):
        target = rng.randint(60, MAX_WORDS)
        words: list[str] = []
        while len(words) < target:
            words += rng.choice(texts).split()
        messages.append(" ".join(words[:target]))
    return messages


def percentiles_ms(values: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(values, n=100)
    return cuts[49] * 1000, cuts[98] * 1000


def measure(
    messages: list[str], assessor: ConductAssessor, encoder: Encoder
) -> dict[str, list[float]]:
    """End to end and bare forward pass on each message, alternating so both see the same load.

    Wall-clock time is the latency. This thread's CPU time (one torch thread runs on it) is what
    the work itself costs, without the waits for the CPU that other jobs on a shared machine add.
    """
    names = ("end to end", "bare forward pass", "end to end, CPU time", "bare pass, CPU time")
    timings: dict[str, list[float]] = {name: [] for name in names}
    for message in messages:
        started, cpu_started = time.perf_counter(), time.thread_time()
        assessor.assess(message)
        timings["end to end"].append(time.perf_counter() - started)
        timings["end to end, CPU time"].append(time.thread_time() - cpu_started)
        started, cpu_started = time.perf_counter(), time.thread_time()
        encoder([message])
        timings["bare forward pass"].append(time.perf_counter() - started)
        timings["bare pass, CPU time"].append(time.thread_time() - cpu_started)
    return timings


def stage_breakdown(messages: list[str], assessor: ConductAssessor) -> dict[str, list[float]]:
    """The assessment's stages timed one by one, each message new to the embedder (profiling)."""
    model, index = assessor.model, assessor.index
    stages: dict[str, list[float]] = {}

    @contextmanager
    def timed(name: str) -> Iterator[None]:
        started = time.perf_counter()
        yield
        stages.setdefault(name, []).append(time.perf_counter() - started)

    for message in messages:
        fresh = ConductAssessor(model, Embedder(load_encoder=lambda: assessor.embedder.encoder))
        with timed("rules"):
            hits = model.rules.find(message)
        sentences = [] if hits else quotable_sentences(message)
        with timed("embedding (one pass, sentences too)"):
            embedding = fresh.embedder.embed_with_ranges(
                [message], [[(s.start, s.end) for s in sentences]], ranges_required=False
            )
        with timed("classifier (message + sentences)"):
            probabilities = fresh._probabilities([message], [sentences], embedding)[0][0]
        by_class = dict(zip(model.classifier.classes, probabilities.tolist(), strict=True))
        category = hits[0].category if hits else max(by_class, key=lambda c: by_class[c])
        if category == model.taxonomy.neutral or index is None:
            continue
        with timed("retrieval (flags only)"):
            index.search(message, k=3, category=category)
    return stages


def _report(timings: dict[str, list[float]]) -> None:
    for name, values in timings.items():
        p50, p99 = percentiles_ms(values)
        print(f"  {name:<36} p50 {p50:6.1f} ms  p99 {p99:6.1f} ms  (n={len(values)})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=300, help="measured messages per set")
    parser.add_argument("--warmup", type=int, default=100, help="unmeasured messages first")
    parser.add_argument("--breakdown", action="store_true", help="also time each stage")
    parser.add_argument(
        "--cache", choices=("memory", "sqlite"), default="memory", help="embeddings cache"
    )
    args = parser.parse_args(argv)
    print("load average at start: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    torch.set_num_threads(1)
    configs = ROOT / "configs"
    taxonomy = load_taxonomy(configs / "taxonomy.yaml")
    texts = simulate_world(SimulationConfig(customers=1_500, days=30, seed=5)).texts
    held_out = args.messages + args.warmup
    train, test = texts.iloc[held_out:], texts.text.iloc[:held_out].tolist()
    encoder = load_minilm_encoder()
    with tempfile.TemporaryDirectory() as scratch:
        trainer = Embedder(load_encoder=lambda: encoder)
        classifier = TextClassifier().fit(
            train.text.tolist(), trainer.embed(train.text.tolist()), train.category.tolist()
        )
        model = ConductModel(classifier, load_rules(configs / "rules.yaml", taxonomy), taxonomy)
        cache: EmbeddingCache = MemoryEmbeddingCache()
        if args.cache == "sqlite":
            cache = SqliteEmbeddingCache(Path(scratch) / "embeddings.db")
        embedder = Embedder(cache, load_encoder=lambda: encoder)
        index = SqliteEvidenceIndex(Path(scratch) / "evidence.db", embedder)
        index.add(load_policy_documents(configs / "policies"))
        assessor = ConductAssessor(model, embedder, index)
        warmup, simulated = test[: args.warmup], test[args.warmup :]
        long = long_messages(train.text.tolist(), args.messages)
        for message in warmup + long_messages(train.text.tolist(), args.warmup, seed=3):
            assessor.assess(message)
            encoder([message])
        print(
            f"{len(train)} training texts; {args.warmup * 2} warm-up messages; 1 torch thread; "
            f"{args.cache} embeddings cache"
        )
        failed = False
        for name, messages in (("simulated", simulated), ("long", long)):
            words = [len(m.split()) for m in messages]
            timings = measure(messages, assessor, encoder)
            results = [assessor.assess(m) for m in messages]  # cached by now
            flagged = sum(result.flagged for result in results)
            model_only = sum(result.source == "model" for result in results)
            print(
                f"{name}: {len(messages)} messages of {min(words)}-{max(words)} words, "
                f"{flagged} flagged ({model_only} by the model alone, quoting its sentences)"
            )
            _report(timings)
            failed |= percentiles_ms(timings["end to end"])[1] > TARGET_P99_MS
            if args.breakdown:
                print("  stages:")
                _report(stage_breakdown(messages, assessor))
    print(f"target: end-to-end p99 <= {TARGET_P99_MS:.0f} ms: {'missed' if failed else 'met'}")
    print("load average at end: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
