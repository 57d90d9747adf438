"""real-time push of critical alerts: alert_pushes

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"  # after the web sessions (0011), the newest on main
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "alert_pushes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("alert_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("recipient", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["alert_id"],
            ["alerts.id"],
            name=op.f("fk_alert_pushes_alert_id_alerts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_pushes")),
        sa.UniqueConstraint(
            "alert_id",
            "channel",
            "recipient",
            name=op.f("uq_alert_pushes_alert_id_channel_recipient"),
        ),
    )
    with op.batch_alter_table("alert_pushes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alert_pushes_status"), ["status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("alert_pushes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alert_pushes_status"))
    op.drop_table("alert_pushes")
