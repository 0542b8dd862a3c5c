"""Configuration, import-light (no Celery): settings (SITEOPS_* environment), sites
(sites.toml -> validated policy), queues (names, declarations, the router by task name)
and redaction (what counts as a secret argument)."""
