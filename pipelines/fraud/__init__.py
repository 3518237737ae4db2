"""Offline fraud jobs: training sets, training and registration, backtests, metrics."""
