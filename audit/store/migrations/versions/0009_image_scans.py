"""images read: image_scans, message_images, findings.detail

The image stage reads each image once (by content hash) and links it to the messages that
carry it; a finding on an image keeps its box and payload or recognized text in ``detail``.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> sa.types.TypeEngine[object]:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _bigint() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "image_scans",
        sa.Column("id", _bigint(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("qr", _json(), nullable=False),
        sa.Column("ocr_read", sa.Boolean(), nullable=False),
        sa.Column("ocr_lines", _json(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_image_scans")),
        sa.UniqueConstraint("sha256", name=op.f("uq_image_scans_sha256")),
    )
    op.create_table(
        "message_images",
        sa.Column("id", _bigint(), nullable=False),
        sa.Column("message_id", _bigint(), nullable=False),
        sa.Column("item", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"], ["messages.id"], name=op.f("fk_message_images_message_id_messages")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message_images")),
        sa.UniqueConstraint("message_id", "item", name=op.f("uq_message_images_message_id_item")),
    )
    with op.batch_alter_table("message_images", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_message_images_message_id"), ["message_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_message_images_sha256"), ["sha256"], unique=False)
    with op.batch_alter_table("findings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("detail", _json(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("findings", schema=None) as batch_op:
        batch_op.drop_column("detail")
    with op.batch_alter_table("message_images", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_message_images_sha256"))
        batch_op.drop_index(batch_op.f("ix_message_images_message_id"))
    op.drop_table("message_images")
    op.drop_table("image_scans")
