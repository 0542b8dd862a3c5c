"""approval requests, tiers, delegations and their audit

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    tz = sa.DateTime(timezone=True)
    op.create_table(
        "approval_requests",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("site", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("requested_by", sa.String(64), nullable=False),
        sa.Column("created_by", sa.String(64)),
        sa.Column("record_model", sa.String(64), nullable=False),
        sa.Column("record_id", sa.Integer()),
        sa.Column("product_id", sa.Integer()),
        sa.Column("amount", sa.Float(), nullable=False),
        sa.Column("rule", sa.String(64), nullable=False),
        sa.Column("rule_why", sa.Text(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("open_key", sa.String(128), unique=True),
        sa.Column("created_at", tz, nullable=False),
        sa.Column("closed_at", tz),
        sa.Column("applied_at", tz),
        sa.Column("applied", sa.Text()),
    )
    op.create_index("ix_approval_requests_site_status", "approval_requests", ["site", "status"])
    op.create_index("ix_approval_requests_record", "approval_requests", ["record_model", "record_id"])
    op.create_table(
        "approval_tiers",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("request_id", sa.Integer(), sa.ForeignKey("approval_requests.id"), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("group", sa.String(64), nullable=False),
        sa.Column("approvers", sa.Text(), nullable=False),
        sa.Column("escalate_to", sa.String(64), nullable=False),
        sa.Column("deadline_hours", sa.Float(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("deadline", tz),
        sa.Column("activity_id", sa.Integer()),
        sa.Column("activity_round", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("decided_by", sa.String(64)),
        sa.Column("as_delegate_of", sa.String(64)),
        sa.Column("decided_at", tz),
        sa.Column("escalated_at", tz),
    )
    op.create_index("ix_approval_tiers_request_id", "approval_tiers", ["request_id"])
    op.create_index("ix_approval_tiers_status_deadline", "approval_tiers", ["status", "deadline"])
    op.create_table(
        "approval_delegations",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("from_login", sa.String(64), nullable=False),
        sa.Column("to_login", sa.String(64), nullable=False),
        sa.Column("until", tz, nullable=False),
        sa.Column("created_at", tz, nullable=False),
    )
    op.create_index("ix_approval_delegations_from_login", "approval_delegations", ["from_login"])
    op.create_table(
        "approval_audit",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("request_id", sa.Integer()),
        sa.Column("site", sa.String(16)),
        sa.Column("record_model", sa.String(64)),
        sa.Column("record_id", sa.Integer()),
        sa.Column("person", sa.String(64)),
        sa.Column("as_delegate_of", sa.String(64)),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("at", tz, nullable=False),
    )
    op.create_index("ix_approval_audit_request_id", "approval_audit", ["request_id"])
    op.create_index("ix_approval_audit_person", "approval_audit", ["person"])
    op.create_index("ix_approval_audit_record", "approval_audit", ["record_model", "record_id"])


def downgrade() -> None:
    op.drop_table("approval_audit")
    op.drop_table("approval_delegations")
    op.drop_table("approval_tiers")
    op.drop_table("approval_requests")
