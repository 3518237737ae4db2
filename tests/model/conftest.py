"""One conduct model per session, trained with the real embeddings on hand-written messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from decisioning.adapters.embeddings import load_minilm_encoder
from decisioning.conduct.assessment import ConductAssessor, ConductModel
from decisioning.conduct.classifier import TextClassifier
from decisioning.conduct.embeddings import Embedder
from decisioning.conduct.rules import load_rules
from decisioning.conduct.taxonomy import load_taxonomy

CONFIGS = Path(__file__).resolve().parents[2] / "configs"

TRAINING = {
    "none": [
        "Please update my address to my new flat.",
        "How do I order a replacement debit card?",
        "What are your branch opening hours on Saturday?",
        "Thanks, the transfer arrived this morning.",
        "Can I change my PIN in the app?",
        "I would like a paper copy of last month's statement.",
        "Please set up a standing order of £50 to my savings.",
        "Is there a limit on contactless payments?",
    ],
    "conduct.vulnerable_customer": [
        "Since my wife passed I find it hard to cope with the paperwork.",
        "I have dementia and get confused by your letters.",
        "I'm going through chemotherapy and can't come into the branch.",
        "My son has autism and I care for him full time, so phone calls are hard.",
        "After my stroke I struggle to use the app.",
        "I am severely depressed and cannot deal with this on my own.",
        "I'm partially sighted and can't read the small print on statements.",
        "I was recently bereaved and need help with my mum's account.",
    ],
    "conduct.price_and_value": [
        "The monthly account fee is far too high for what I get.",
        "Why do new customers get a better rate than loyal ones?",
        "The overdraft charges are extortionate.",
        "I was charged a fee I was never told about.",
        "Paying twelve pounds a month for this package is poor value.",
        "The exchange rate you used added a big hidden cost.",
        "Your savings rate is a fraction of what others pay.",
        "The late fee was more than the payment itself.",
    ],
    "conduct.financial_difficulty": [
        "I lost my job and can't keep up with my loan repayments.",
        "I'm behind on my mortgage and scared of losing the house.",
        "I can't afford the minimum payment on my credit card this month.",
        "The debt collectors keep calling me every day.",
        "I need a payment holiday, money is very tight.",
        "I've had to use payday loans to pay my bills.",
        "My hours were cut and I can't pay the rent and the overdraft.",
        "I'm struggling to pay my bills and my account is in arrears.",
    ],
}


@pytest.fixture(scope="session")
def assessor() -> ConductAssessor:
    """Loads the real model once for every behavioural test."""
    taxonomy = load_taxonomy(CONFIGS / "taxonomy.yaml")
    rules = load_rules(CONFIGS / "rules.yaml", taxonomy)
    embedder = Embedder(load_encoder=load_minilm_encoder)
    texts = [text for texts in TRAINING.values() for text in texts]
    labels = [label for label, texts in TRAINING.items() for _ in texts]
    classifier = TextClassifier().fit(texts, embedder.embed(texts), labels)
    return ConductAssessor(ConductModel(classifier, rules, taxonomy), embedder)


def probability(assessor: ConductAssessor, text: str, category: str) -> float:
    """The model's own probability for ``category`` (rules left out: this tests the model)."""
    classifier = assessor.model.classifier
    row = classifier.predict_proba([text], assessor.embedder.embed([text]))[0]
    return float(row[classifier.classes.index(category)])
