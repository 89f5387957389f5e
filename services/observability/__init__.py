"""Tracing (OpenTelemetry), Prometheus metrics and consent-gated site telemetry."""
