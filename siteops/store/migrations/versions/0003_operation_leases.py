"""operation holders and leases

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

COLUMNS = ("holder_worker", "holder_pid", "holder_token", "holder_since", "lease_expires_at")


def upgrade() -> None:
    # batch_alter_table: SQLite cannot ALTER much in place; on PostgreSQL it is plain ALTERs.
    with op.batch_alter_table("operations") as batch:
        batch.add_column(sa.Column("holder_worker", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("holder_pid", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("holder_token", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("holder_since", sa.Float(), nullable=True))
        batch.add_column(sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("operations") as batch:
        for name in reversed(COLUMNS):
            batch.drop_column(name)
