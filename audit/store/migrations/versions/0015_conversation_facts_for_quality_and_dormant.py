"""conversation_facts: the quality page's waiting and response inputs and the dormant list's
per-conversation message times

``unanswered_since`` and ``response_business_s`` (from the newest score's metrics);
``last_customer_us``, ``first_staff_us``, ``last_staff_us`` (microseconds since the epoch),
``staff_messages`` and ``staff_after_customer`` (from the messages); the same times over the
pair of staff member and customer, ``pair_last_customer_us``, ``pair_first_staff_us``,
``pair_last_staff_us``, and ``pair_head``; indexes on (staff_id, customer_id) and on
customer_id.

The existing rows have none of these: the daily stage's marks are removed, so the reports
compute live until the next refresh, which rebuilds the tables in full.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("conversation_facts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("unanswered_since", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("response_business_s", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("last_customer_us", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("first_staff_us", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("last_staff_us", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("staff_messages", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("staff_after_customer", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("pair_last_customer_us", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("pair_first_staff_us", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("pair_last_staff_us", sa.BigInteger(), nullable=True))
        batch_op.add_column(
            sa.Column("pair_head", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.create_index(
            "ix_conversation_facts_staff_id_customer_id", ["staff_id", "customer_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_conversation_facts_customer_id"), ["customer_id"], unique=False
        )
    # the rows lack the new columns: stale, so unread until a full rebuild fills them
    op.execute(
        "DELETE FROM checkpoints WHERE source = 'stage:daily' OR source LIKE 'stage:daily:%'"
    )


def downgrade() -> None:
    with op.batch_alter_table("conversation_facts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_conversation_facts_customer_id"))
        batch_op.drop_index("ix_conversation_facts_staff_id_customer_id")
        batch_op.drop_column("pair_head")
        batch_op.drop_column("pair_last_staff_us")
        batch_op.drop_column("pair_first_staff_us")
        batch_op.drop_column("pair_last_customer_us")
        batch_op.drop_column("staff_after_customer")
        batch_op.drop_column("staff_messages")
        batch_op.drop_column("last_staff_us")
        batch_op.drop_column("first_staff_us")
        batch_op.drop_column("last_customer_us")
        batch_op.drop_column("response_business_s")
        batch_op.drop_column("unanswered_since")
