"""Connectors to the outside world (Odoo, carriers, EDI). They act; they never decide policy."""
