"""initial: job runs, dead letters, operations

Revision ID: 0001
Revises:
Create Date: 2026-11-28 11:21:45.841293
"""

import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('dead_letters',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('task_id', sa.String(length=64), nullable=False),
    sa.Column('task_name', sa.String(length=200), nullable=False),
    sa.Column('site', sa.String(length=8), nullable=True),
    sa.Column('business_key', sa.String(length=200), nullable=True),
    sa.Column('args', sa.JSON(), nullable=False),
    sa.Column('kwargs', sa.JSON(), nullable=False),
    sa.Column('reason', sa.String(length=32), nullable=False),
    sa.Column('error_class', sa.String(length=200), nullable=False),
    sa.Column('error_message', sa.Text(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('replayed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('replayed_task_id', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_dead_letters_business_key', 'dead_letters', ['business_key'], unique=False)
    op.create_index('ix_dead_letters_site', 'dead_letters', ['site'], unique=False)
    op.create_index('ix_dead_letters_task_id', 'dead_letters', ['task_id'], unique=False)
    op.create_index('ix_dead_letters_task_name', 'dead_letters', ['task_name'], unique=False)

    op.create_table('job_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('task_id', sa.String(length=64), nullable=False),
    sa.Column('task_name', sa.String(length=200), nullable=False),
    sa.Column('site', sa.String(length=8), nullable=True),
    sa.Column('business_key', sa.String(length=200), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('redelivered', sa.Boolean(), nullable=False),
    sa.Column('worker', sa.String(length=200), nullable=True),
    sa.Column('pid', sa.Integer(), nullable=True),
    sa.Column('transitions', sa.JSON(), nullable=False),
    sa.Column('error_class', sa.String(length=200), nullable=True),
    sa.Column('error_message', sa.Text(), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('duration_seconds', sa.Float(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_job_runs_business_key', 'job_runs', ['business_key'], unique=False)
    op.create_index('ix_job_runs_site_state', 'job_runs', ['site', 'state'], unique=False)
    op.create_index('ix_job_runs_task_id', 'job_runs', ['task_id'], unique=False)
    op.create_index('ix_job_runs_task_name', 'job_runs', ['task_name'], unique=False)
    op.create_index('ix_job_runs_worker_state', 'job_runs', ['worker', 'state'], unique=False)

    op.create_table('operations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=300), nullable=False),
    sa.Column('site', sa.String(length=8), nullable=True),
    sa.Column('task_name', sa.String(length=200), nullable=True),
    sa.Column('task_id', sa.String(length=64), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('result', sa.JSON(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key')
    )



def downgrade() -> None:

    op.drop_table('operations')
    op.drop_index('ix_job_runs_worker_state', table_name='job_runs')
    op.drop_index('ix_job_runs_task_name', table_name='job_runs')
    op.drop_index('ix_job_runs_task_id', table_name='job_runs')
    op.drop_index('ix_job_runs_site_state', table_name='job_runs')
    op.drop_index('ix_job_runs_business_key', table_name='job_runs')

    op.drop_table('job_runs')
    op.drop_index('ix_dead_letters_task_name', table_name='dead_letters')
    op.drop_index('ix_dead_letters_task_id', table_name='dead_letters')
    op.drop_index('ix_dead_letters_site', table_name='dead_letters')
    op.drop_index('ix_dead_letters_business_key', table_name='dead_letters')

    op.drop_table('dead_letters')

