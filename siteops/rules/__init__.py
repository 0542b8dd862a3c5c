"""Pure decisions, no I/O: what counts as a problem, and what to do about what a scan saw."""
