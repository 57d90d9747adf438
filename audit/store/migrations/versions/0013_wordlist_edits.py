"""word lists edited on the dashboard: wordlist_edits, rescan_requests

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    json = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
    op.create_table(
        "wordlist_edits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("term", sa.String(length=64), nullable=False),
        sa.Column("term_key", sa.String(length=64), nullable=False),
        sa.Column("origin", sa.String(length=8), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("roles", sa.String(length=16), nullable=False),
        sa.Column("variants", json, nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=128), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wordlist_edits")),
        sa.UniqueConstraint(
            "category", "term_key", name=op.f("uq_wordlist_edits_category_term_key")
        ),
    )
    op.create_table(
        "rescan_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("requested_by", sa.String(length=128), nullable=False),
        sa.Column("reason", sa.String(length=255), nullable=False),
        sa.Column("wordlist_hash", sa.String(length=64), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("scan_run_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["scan_run_id"],
            ["scan_runs.id"],
            name=op.f("fk_rescan_requests_scan_run_id_scan_runs"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rescan_requests")),
    )
    with op.batch_alter_table("rescan_requests", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_rescan_requests_done_at"), ["done_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("rescan_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rescan_requests_done_at"))
    op.drop_table("rescan_requests")
    op.drop_table("wordlist_edits")
