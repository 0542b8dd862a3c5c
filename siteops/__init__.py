"""siteops: a Celery-based job platform for multi-site distributors on Odoo."""
