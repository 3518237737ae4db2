"""Monitoring jobs: drift between two windows of events, and decisions against late labels."""
