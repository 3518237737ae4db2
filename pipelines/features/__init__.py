"""Offline feature jobs: point-in-time build, Feast apply and materialize, training sets."""
