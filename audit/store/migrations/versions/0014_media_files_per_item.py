"""media files per picture item: media_files.item, unique (message_id, item); an index on
media_files.sdkfileid

A ``mixed`` message or a forwarded chat record carries several pictures, each downloaded
on its own; a message's own attachment is item 0, as every existing row. The image stage of
an exported archive file looks its pictures up by ``sdkfileid``.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("media_files", schema=None) as batch_op:
        batch_op.add_column(sa.Column("item", sa.Integer(), server_default="0", nullable=False))
        batch_op.drop_constraint(batch_op.f("uq_media_files_message_id"), type_="unique")
        batch_op.create_unique_constraint(
            batch_op.f("uq_media_files_message_id_item"), ["message_id", "item"]
        )
        batch_op.create_index(batch_op.f("ix_media_files_sdkfileid"), ["sdkfileid"])


def downgrade() -> None:
    op.execute("DELETE FROM media_files WHERE item <> 0")
    with op.batch_alter_table("media_files", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_media_files_sdkfileid"))
        batch_op.drop_constraint(batch_op.f("uq_media_files_message_id_item"), type_="unique")
        batch_op.create_unique_constraint(batch_op.f("uq_media_files_message_id"), ["message_id"])
        batch_op.drop_column("item")
