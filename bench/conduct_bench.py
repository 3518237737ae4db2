"""Conduct benchmark: embedding throughput, banking77 quality against baselines, message latency.

Run: ``.venv/bin/python bench/conduct_bench.py`` (reads ``../shared/data/banking77``, CC BY 4.0).
Quality: train on all of train.csv, score test.csv, beside TF-IDF baselines fitted in the same run
and the published fine-tuned BERT (93.66 %). Latency: one simulated message end to end (rules,
embedding with a cold cache, classifier, retrieval) beside the bare model forward pass, with a
conduct model trained on simulated texts (banking77 intents are not conduct categories).
``--sections latency`` (or throughput, quality) runs a subset.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.svm import LinearSVC

from decisioning.conduct.assessment import ConductAssessor, ConductModel
from decisioning.conduct.classifier import TextClassifier
from decisioning.conduct.embeddings import Embedder, SqliteEmbeddingCache, load_minilm_encoder
from decisioning.conduct.evaluation import classification_metrics
from decisioning.conduct.evidence import SqliteEvidenceIndex, load_policy_documents
from decisioning.conduct.rules import load_rules
from decisioning.conduct.taxonomy import load_taxonomy
from pipelines.simulate import SimulationConfig, simulate_world

ROOT = Path(__file__).resolve().parents[1]
BANKING77 = ROOT.parent / "shared" / "data" / "banking77"
PUBLISHED_BERT_ACCURACY = 0.9366
THROUGHPUT_TEXTS = 2_000
LATENCY_MESSAGES = 200


def _row(name: str, accuracy: float, macro_f1: float, seconds: float) -> None:
    print(f"  {name:<44} accuracy {accuracy:.4f}  macro-F1 {macro_f1:.4f}  ({seconds:.1f} s)")


def embedding_throughput(texts: list[str], scratch: Path) -> Embedder:
    """Texts/s through the cache: cold (every text hits the model) and warm (none does)."""
    encoder = load_minilm_encoder()
    embedder = Embedder(SqliteEmbeddingCache(scratch / "emb.db"), load_encoder=lambda: encoder)
    for label in ("uncached (model)", "cached (SQLite)"):
        started = time.perf_counter()
        embedder.embed(texts)
        seconds = time.perf_counter() - started
        print(f"  {label:<18} {len(texts) / seconds:>10,.0f} texts/s  ({len(texts)} texts)")
    return embedder


def banking77_quality(embedder: Embedder, train: pd.DataFrame, test: pd.DataFrame) -> None:
    started = time.perf_counter()
    train_vectors = embedder.embed(train.text.tolist())
    test_vectors = embedder.embed(test.text.tolist())
    embed_seconds = time.perf_counter() - started
    started = time.perf_counter()
    ours = TextClassifier().fit(train.text.tolist(), train_vectors, train.category.tolist())
    predicted = ours.predict(test.text.tolist(), test_vectors)
    metrics = classification_metrics(test.category.tolist(), predicted)
    _row(
        "ours: MiniLM + TF-IDF, calibrated LinearSVC",
        **metrics,
        seconds=time.perf_counter() - started,
    )
    print(f"  {'':<44} (+ {embed_seconds:.1f} s embedding {len(train) + len(test)} texts)")
    tfidf = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    train_x, test_x = tfidf.fit_transform(train.text), tfidf.transform(test.text)
    for name, estimator in (
        ("baseline: TF-IDF 1-2g + LinearSVC", LinearSVC()),
        ("baseline: TF-IDF 1-2g + logistic regression", LogisticRegression(C=10, max_iter=2000)),
    ):
        started = time.perf_counter()
        predicted = estimator.fit(train_x, train.category).predict(test_x)
        metrics = classification_metrics(test.category.tolist(), list(predicted))
        _row(name, **metrics, seconds=time.perf_counter() - started)
    print(
        f"  published: fine-tuned BERT (Casanueva et al. 2020) accuracy {PUBLISHED_BERT_ACCURACY}"
    )


def message_latency(scratch: Path) -> None:
    """p50/p99 of one message end to end with a cold cache, beside the bare forward pass."""
    configs = ROOT / "configs"
    taxonomy = load_taxonomy(configs / "taxonomy.yaml")
    texts = simulate_world(SimulationConfig(customers=1_500, days=30, seed=5)).texts
    train, test = texts.iloc[LATENCY_MESSAGES:], texts.iloc[:LATENCY_MESSAGES]
    warm = Embedder(SqliteEmbeddingCache(scratch / "emb.db"))
    classifier = TextClassifier().fit(
        train.text.tolist(), warm.embed(train.text.tolist()), train.category.tolist()
    )
    model = ConductModel(classifier, load_rules(configs / "rules.yaml", taxonomy), taxonomy)
    cold = Embedder()  # in-process cache only: each new message pays one forward pass
    index = SqliteEvidenceIndex(scratch / "evidence.db", cold)
    index.add(load_policy_documents(configs / "policies"))
    assessor = ConductAssessor(model, cold, index)
    messages = test.text.tolist()
    words = [len(message.split()) for message in messages]
    print(f"  {len(train)} training texts; messages of {min(words)}-{max(words)} words")
    assessor.assess(messages[0])  # load the model outside the timing
    timings: dict[str, list[float]] = {"end to end": [], "bare forward pass": []}
    for message in messages:
        started = time.perf_counter()
        assessor.assess(message)
        timings["end to end"].append(time.perf_counter() - started)
        started = time.perf_counter()
        cold.encoder([message])
        timings["bare forward pass"].append(time.perf_counter() - started)
    for name, values in timings.items():
        cuts = statistics.quantiles(values, n=100)
        print(f"  {name:<18} p50 {cuts[49] * 1000:6.1f} ms  p99 {cuts[98] * 1000:6.1f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", nargs="+", default=["throughput", "quality", "latency"])
    sections = set(parser.parse_args().sections)
    if not (BANKING77 / "train.csv").exists():
        print(f"banking77 not found under {BANKING77}", file=sys.stderr)
        return 1
    train = pd.read_csv(BANKING77 / "train.csv")
    test = pd.read_csv(BANKING77 / "test.csv")
    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder)
        embedder = Embedder(SqliteEmbeddingCache(scratch / "emb.db"))
        if "throughput" in sections:
            print("embedding throughput (all-MiniLM-L6-v2, 1 torch thread, batch 64)")
            embedder = embedding_throughput(train.text.tolist()[:THROUGHPUT_TEXTS], scratch)
        if "quality" in sections:
            print(f"banking77, 77 intents: train {len(train)} rows, test {len(test)} rows")
            banking77_quality(embedder, train, test)
        if "latency" in sections:
            print(f"one message end to end ({LATENCY_MESSAGES} simulated messages)")
            message_latency(scratch)
    return 0


if __name__ == "__main__":
    sys.exit(main())
