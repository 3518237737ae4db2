"""The text classifier: a temperature-calibrated linear SVM on sentence embeddings plus TF-IDF.

Generic over labels, so the same class serves the conduct taxonomy and any labelled text table
(``riskctl conduct evaluate``). TF-IDF word 1-2 grams earn their place: on banking77 they add about
one point of accuracy to the embeddings alone (docs/benchmarks.md). Temperature scaling keeps
argmax (and so accuracy) unchanged while making the probabilities usable as a risk score.
Embeddings come in from the caller, so cross-validation embeds each text once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import sklearn
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.svm import LinearSVC

from decisioning.conduct.errors import ModelNotFittedError, TrainingDataError


@dataclass(frozen=True)
class ClassifierConfig:
    """Hyper-parameters; the defaults were chosen on banking77 (see docs/benchmarks.md)."""

    svm_c: float = 1.0
    use_tfidf: bool = True
    calibration_folds: int = 3
    random_state: int = 0


def check_labels(labels: Sequence[str], folds: int) -> None:
    """Every label needs ``folds`` examples, or stratified splits and calibration cannot work."""
    counts = Counter(labels)
    if len(counts) < 2:
        raise TrainingDataError("need at least two distinct labels to train a classifier")
    rare = sorted(label for label, count in counts.items() if count < folds)
    if rare:
        raise TrainingDataError(
            f"labels with fewer than {folds} examples: {', '.join(map(str, rare[:5]))}"
        )


class TextClassifier:
    """Fits on (texts, embeddings, labels); predicts calibrated class probabilities."""

    def __init__(self, config: ClassifierConfig | None = None) -> None:
        self.config = config or ClassifierConfig()
        self._tfidf: TfidfVectorizer | None = None
        self._model: CalibratedClassifierCV | None = None

    @property
    def classes(self) -> list[str]:
        if self._model is None:
            raise ModelNotFittedError("the text classifier has not been fitted")
        return [str(label) for label in self._model.classes_]

    def fit(
        self, texts: Sequence[str], embeddings: np.ndarray, labels: Sequence[str]
    ) -> TextClassifier:
        check_labels(labels, 2)
        folds = min(self.config.calibration_folds, min(Counter(labels).values()))
        if self.config.use_tfidf:
            self._tfidf = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
            self._tfidf.fit(texts)
        svm = LinearSVC(C=self.config.svm_c, random_state=self.config.random_state)
        self._model = CalibratedClassifierCV(svm, method="temperature", cv=folds, ensemble=False)
        self._model.fit(self._features(texts, embeddings), np.asarray(labels, dtype=object))
        return self

    def predict_proba(self, texts: Sequence[str], embeddings: np.ndarray) -> np.ndarray:
        """Rows of probabilities over :attr:`classes`."""
        if self._model is None:
            raise ModelNotFittedError("the text classifier has not been fitted")
        # Our own features, finite by construction: skipping sklearn's re-validation saves about
        # a third of a one-message call (~0.3 of ~1.1 ms), which is most of its cost.
        with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
            return np.asarray(self._model.predict_proba(self._features(texts, embeddings)))

    def predict(self, texts: Sequence[str], embeddings: np.ndarray) -> list[str]:
        classes = self.classes
        return [classes[i] for i in self.predict_proba(texts, embeddings).argmax(axis=1)]

    def _features(self, texts: Sequence[str], embeddings: np.ndarray) -> sp.csr_matrix:
        dense = sp.csr_matrix(np.asarray(embeddings, dtype=np.float64))
        if self._tfidf is None:
            return dense
        return sp.hstack([self._tfidf.transform(texts), dense]).tocsr()
