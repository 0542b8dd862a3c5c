"""Thin tasks: resolve ids, call rules and connectors, own retry and ack policy."""
