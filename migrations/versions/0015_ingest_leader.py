"""ingester leadership: the lease (epoch = fencing token) and every instance's role

Revision ID: 0015
Revises: 0014
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # core/db/leader_schema.py
    op.create_table('ingest_lease',
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('epoch', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('holder', sa.Text(), nullable=True),
    sa.Column('acquired_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('renewed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('expires_at', sa.DateTime(timezone=True), server_default=sa.text("'-infinity'"), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    # The row exists from the start: the append transaction's fence check locks it, never inserts it.
    op.execute("INSERT INTO ingest_lease (name) VALUES ('ingest')")
    op.create_table('ingest_instance',
    sa.Column('instance', sa.Text(), nullable=False),
    sa.Column('role', sa.Text(), nullable=False),
    sa.Column('epoch', sa.BigInteger(), nullable=True),
    sa.Column('host', sa.Text(), nullable=False),
    sa.Column('pid', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('seen_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('instance')
    )


def downgrade() -> None:
    op.drop_table('ingest_instance')
    op.drop_table('ingest_lease')
