"""Simulators of the systems siteops talks to (test and demo equipment, never production code)."""
