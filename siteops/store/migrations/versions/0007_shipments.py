"""shipments: one row per (site, picking) with its label and tracking state

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "shipments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site", sa.String(length=8), nullable=False),
        sa.Column("picking_id", sa.Integer(), nullable=False),
        sa.Column("picking_name", sa.String(length=200), nullable=False),
        sa.Column("account", sa.String(length=32), nullable=False),
        sa.Column("carrier", sa.String(length=64), nullable=True),
        sa.Column("service", sa.String(length=64), nullable=True),
        sa.Column("shipment_id", sa.String(length=64), nullable=False),
        sa.Column("tracking_code", sa.String(length=64), nullable=False),
        sa.Column("tracker_id", sa.String(length=64), nullable=True),
        sa.Column("label_url", sa.Text(), nullable=True),
        sa.Column("amount", sa.String(length=16), nullable=True),
        sa.Column("currency", sa.String(length=8), nullable=True),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("carrier_status", sa.String(length=32), nullable=True),
        sa.Column("status_detail", sa.String(length=64), nullable=True),
        sa.Column("status_message", sa.Text(), nullable=True),
        sa.Column("status_at", sa.String(length=32), nullable=True),
        sa.Column("last_event_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("polled_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("site", "picking_id", name="uq_shipments_site_picking"),
    )
    op.create_index("ix_shipments_tracking_code", "shipments", ["tracking_code"], unique=False)
    op.create_index("ix_shipments_site_status", "shipments", ["site", "status"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_shipments_site_status", table_name="shipments")
    op.drop_index("ix_shipments_tracking_code", table_name="shipments")
    op.drop_table("shipments")
