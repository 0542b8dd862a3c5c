"""odoo events seen and catch-up watermarks

Revision ID: 0010
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "odoo_events_seen",
        sa.Column("site", sa.String(length=16), nullable=False),
        sa.Column("model", sa.String(length=64), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("write_date", sa.String(length=32), nullable=False),
        sa.Column("outcome", sa.String(length=200), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("site", "model", "record_id"),
    )
    op.create_table(
        "catch_up_watermarks",
        sa.Column("site", sa.String(length=16), nullable=False),
        sa.Column("model", sa.String(length=64), nullable=False),
        sa.Column("write_date", sa.String(length=32), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("site", "model"),
    )


def downgrade() -> None:
    op.drop_table("catch_up_watermarks")
    op.drop_table("odoo_events_seen")
