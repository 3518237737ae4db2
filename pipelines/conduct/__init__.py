"""Offline conduct jobs: train and register the classifier, k-fold evaluation on any table."""
