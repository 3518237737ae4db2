"""Feast definitions only; the store config per profile lives in configs/feast/."""
