"""Conduct quality on banking77: our classifier beside TF-IDF + LinearSVC and published BERT.

Run: ``.venv/bin/python bench/conduct_quality.py [--data DIR]`` (default
``../shared/data/banking77`` from the repository root, CC BY 4.0). Trains on all of
``train.csv``, scores ``test.csv``; the TF-IDF baseline is fitted in the same run, the fine-tuned
BERT figure (93.66 %, Casanueva et al. 2020) is the published one. Embeddings are computed on one
torch thread without a cache.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd
import torch
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.svm import LinearSVC

from decisioning.adapters.embeddings import load_minilm_encoder
from decisioning.conduct.classifier import TextClassifier
from decisioning.conduct.embeddings import Embedder
from pipelines.conduct.evaluation import classification_metrics

ROOT = Path(__file__).resolve().parents[1]
BANKING77 = ROOT.parent / "shared" / "data" / "banking77"
PUBLISHED_BERT_ACCURACY = 0.9366


def _row(name: str, accuracy: float, macro_f1: float, seconds: float) -> None:
    print(f"  {name:<44} accuracy {accuracy:.4f}  macro-F1 {macro_f1:.4f}  ({seconds:.1f} s)")


def ours(train: pd.DataFrame, test: pd.DataFrame) -> None:
    """MiniLM embeddings + TF-IDF into the calibrated linear model the conduct pillar uses."""
    embedder = Embedder(load_encoder=load_minilm_encoder)
    started = time.perf_counter()
    train_vectors = embedder.embed(train.text.tolist())
    test_vectors = embedder.embed(test.text.tolist())
    embed_seconds = time.perf_counter() - started
    started = time.perf_counter()
    classifier = TextClassifier().fit(train.text.tolist(), train_vectors, train.category.tolist())
    predicted = classifier.predict(test.text.tolist(), test_vectors)
    metrics = classification_metrics(test.category.tolist(), predicted)
    _row(
        "ours: MiniLM + TF-IDF, calibrated LinearSVC",
        **metrics,
        seconds=time.perf_counter() - started,
    )
    rate = (len(train) + len(test)) / embed_seconds
    print(f"  {'':<44} (+ {embed_seconds:.1f} s embedding, {rate:.0f} texts/s)")


def tfidf_baseline(train: pd.DataFrame, test: pd.DataFrame) -> None:
    started = time.perf_counter()
    tfidf = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    train_x, test_x = tfidf.fit_transform(train.text), tfidf.transform(test.text)
    predicted = LinearSVC().fit(train_x, train.category).predict(test_x)
    metrics = classification_metrics(test.category.tolist(), list(predicted))
    _row("baseline: TF-IDF 1-2g + LinearSVC", **metrics, seconds=time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=BANKING77, help="folder with train/test.csv")
    args = parser.parse_args(argv)
    if not (args.data / "train.csv").exists() or not (args.data / "test.csv").exists():
        print(f"banking77 train.csv/test.csv not found under {args.data}", file=sys.stderr)
        return 1
    torch.set_num_threads(1)
    train, test = pd.read_csv(args.data / "train.csv"), pd.read_csv(args.data / "test.csv")
    print(f"banking77, {train.category.nunique()} intents: train {len(train)}, test {len(test)}")
    ours(train, test)
    tfidf_baseline(train, test)
    print(
        f"  published: fine-tuned BERT (Casanueva et al. 2020) accuracy {PUBLISHED_BERT_ACCURACY}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
