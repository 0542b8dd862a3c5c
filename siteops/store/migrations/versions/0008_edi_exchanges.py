"""EDI exchanges and control numbers

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "edi_exchanges",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("direction", sa.String(length=3), nullable=False),
        sa.Column("partner", sa.String(length=16), nullable=False),
        sa.Column("site", sa.String(length=8), nullable=True),
        sa.Column("standard", sa.String(length=8), nullable=False),
        sa.Column("doc_type", sa.String(length=32), nullable=False),
        sa.Column("interchange_control", sa.String(length=14), nullable=True),
        sa.Column("group_control", sa.String(length=14), nullable=True),
        sa.Column("set_control", sa.String(length=14), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("filename", sa.String(length=200), nullable=False),
        sa.Column("checksum", sa.String(length=64), nullable=False),
        sa.Column("odoo_model", sa.String(length=64), nullable=True),
        sa.Column("odoo_id", sa.Integer(), nullable=True),
        sa.Column("business_key", sa.String(length=64), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("ack_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("responded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("overdue_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("direction", "partner", "checksum", name="uq_edi_exchanges_file"),
    )
    op.create_index("ix_edi_exchanges_business_key", "edi_exchanges", ["business_key"], unique=False)
    op.create_index("ix_edi_exchanges_partner_controls", "edi_exchanges",
                    ["partner", "direction", "interchange_control"], unique=False)
    op.create_index("ix_edi_exchanges_state", "edi_exchanges", ["state", "ack_due_at"], unique=False)
    op.create_table(
        "edi_control_numbers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("partner", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("partner", "kind", "number", name="uq_edi_control_numbers"),
    )


def downgrade() -> None:
    op.drop_table("edi_control_numbers")
    op.drop_index("ix_edi_exchanges_state", table_name="edi_exchanges")
    op.drop_index("ix_edi_exchanges_partner_controls", table_name="edi_exchanges")
    op.drop_index("ix_edi_exchanges_business_key", table_name="edi_exchanges")
    op.drop_table("edi_exchanges")
