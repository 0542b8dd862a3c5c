"""findings stay one per problem; alerts owed until paid

Revision ID: 0005
Revises: 0004

- a partial unique index: one active (open or acknowledged) finding per fingerprint
  (PostgreSQL and SQLite both have partial indexes);
- the alert ledger `alert_debts` (see siteops/store/alert_debts.py).

Stores that ran overlapping scans before this revision may hold duplicate active
findings: all but the oldest of each fingerprint are resolved first (their problem is the
oldest one's), or the index could not be built. Findings from before the ledger owe
nothing: they were alerted (or their alert was lost) before anyone could know.
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

ACTIVE = "status IN ('open', 'acknowledged')"


def upgrade() -> None:
    op.execute(sa.text(
        f"UPDATE findings SET status = 'resolved', resolved_at = last_seen "
        f"WHERE {ACTIVE} AND id NOT IN (SELECT MIN(id) FROM findings WHERE {ACTIVE} GROUP BY fingerprint)"))
    op.create_index("ux_findings_active_fingerprint", "findings", ["fingerprint"], unique=True,
                    postgresql_where=sa.text(ACTIVE), sqlite_where=sa.text(ACTIVE))
    op.create_table(
        "alert_debts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("finding_id", sa.Integer(), nullable=False),
        sa.Column("site", sa.String(length=8), nullable=False),
        sa.Column("event", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("owed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("touched_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("publishes", sa.Integer(), nullable=False),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["finding_id"], ["findings.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("finding_id", "event", "channel", name="uq_alert_debts_finding_event_channel"),
    )
    op.create_index("ix_alert_debts_unpaid", "alert_debts", ["touched_at"],
                    postgresql_where=sa.text("paid_at IS NULL"), sqlite_where=sa.text("paid_at IS NULL"))


def downgrade() -> None:
    op.drop_index("ix_alert_debts_unpaid", table_name="alert_debts")
    op.drop_table("alert_debts")
    op.drop_index("ux_findings_active_fingerprint", table_name="findings")
