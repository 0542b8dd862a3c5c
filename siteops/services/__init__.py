"""Orchestration that tasks and commands call: scans, alerts, replay, the sites report."""
