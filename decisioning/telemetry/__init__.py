"""Logs, traces and Prometheus metrics, and the gauges published from the operations store."""
