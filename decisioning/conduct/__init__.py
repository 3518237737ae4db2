"""Conduct and compliance risk on free text: taxonomy, rules, embeddings, classifier, evidence, LLM.

Import the submodules you need; nothing here loads a model or reads a file at import time.
"""
