"""Offline jobs, each a typed function of data and settings, and the ``riskctl`` CLI."""
