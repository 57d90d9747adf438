"""conversations: one index on (thread, started_at) in place of the one on thread

The conversation stage looks up the conversations of a batch's threads that its time window
can touch (``thread IN (...) AND started_at <= ? AND ended_at >= ?``). With an index on
thread alone, SQLite's planner preferred the range over ``started_at``, which reads every
conversation started before the window: each batch read more of the history than the last.
The composite index answers the thread and the range at once, and still serves the lookups
by thread alone.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_conversations_thread_started_at", "conversations", ["thread", "started_at"])
    op.drop_index("ix_conversations_thread", table_name="conversations")


def downgrade() -> None:
    op.create_index("ix_conversations_thread", "conversations", ["thread"])
    op.drop_index("ix_conversations_thread_started_at", table_name="conversations")
