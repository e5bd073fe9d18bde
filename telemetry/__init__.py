"""Observability shared by every process: Prometheus metrics, the Temporal SDK's metrics, JSON logs."""
