"""stage_failures: items a stage could not process; messages.repairs

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "stage_failures",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("stage", sa.String(length=32), nullable=False),
        sa.Column("item", sa.String(length=255), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stage_failures")),
        sa.UniqueConstraint("stage", "item", name=op.f("uq_stage_failures_stage_item")),
    )
    with op.batch_alter_table("stage_failures", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_stage_failures_stage"), ["stage"], unique=False)
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("repairs", sa.String(length=255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("repairs")
    with op.batch_alter_table("stage_failures", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_stage_failures_stage"))
    op.drop_table("stage_failures")
