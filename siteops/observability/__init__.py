"""Metrics definitions, logging context and (later) the exporter."""
