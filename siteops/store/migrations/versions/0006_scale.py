"""50 sites: scan freshness table (upserted), indexes for the report, exporter and retention

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

INDEXES = [
    ("ix_job_runs_started_site_state", "job_runs", ["started_at", "site", "state"]),
    ("ix_dead_letters_waiting", "dead_letters", ["replayed_at", "site", "task_name"]),
    ("ix_findings_status_site_kind", "findings", ["status", "site", "kind"]),
    ("ix_scan_runs_finished_at", "scan_runs", ["finished_at"]),
]


def upgrade() -> None:
    op.create_table(
        "scan_freshness",
        sa.Column("site", sa.String(length=8), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("scan_run_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("site", "kind"),
    )
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns, unique=False)
    # Once, from the history: the last complete scan of each site and kind.
    op.execute(
        "INSERT INTO scan_freshness (site, kind, finished_at, scan_run_id) "
        "SELECT r.site, r.kind, r.finished_at, MAX(r.id) FROM scan_runs r "
        "JOIN (SELECT site, kind, MAX(finished_at) AS last FROM scan_runs WHERE status = 'complete' "
        "GROUP BY site, kind) m ON r.site = m.site AND r.kind = m.kind AND r.finished_at = m.last "
        "WHERE r.status = 'complete' GROUP BY r.site, r.kind, r.finished_at"
    )


def downgrade() -> None:
    for name, table, _columns in reversed(INDEXES):
        op.drop_index(name, table_name=table)
    op.drop_table("scan_freshness")
