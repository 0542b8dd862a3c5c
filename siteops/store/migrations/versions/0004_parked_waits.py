"""parked waits; the raw message of a dead letter set aside by the worker

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "parked_waits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.String(length=64), nullable=False),
        sa.Column("task_name", sa.String(length=200), nullable=False),
        sa.Column("site", sa.String(length=8), nullable=True),
        sa.Column("business_key", sa.String(length=200), nullable=True),
        sa.Column("args", sa.JSON(), nullable=False),
        sa.Column("kwargs", sa.JSON(), nullable=False),
        sa.Column("retries", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("enqueued_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("task_id", "retries", name="uq_parked_waits_task_retries"),
    )
    op.create_index("ix_parked_waits_task_id", "parked_waits", ["task_id"], unique=False)
    op.create_index("ix_parked_waits_business_key", "parked_waits", ["business_key"], unique=False)
    op.create_index("ix_parked_waits_state_due", "parked_waits", ["state", "due_at"], unique=False)
    with op.batch_alter_table("dead_letters") as batch:
        batch.add_column(sa.Column("message", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("dead_letters") as batch:
        batch.drop_column("message")
    op.drop_index("ix_parked_waits_state_due", table_name="parked_waits")
    op.drop_index("ix_parked_waits_business_key", table_name="parked_waits")
    op.drop_index("ix_parked_waits_task_id", table_name="parked_waits")
    op.drop_table("parked_waits")
