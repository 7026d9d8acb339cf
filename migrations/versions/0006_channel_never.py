"""``channel_settings.never_emojis``: the emojis the bot never uses in a channel (its
reactions, ``/emojify`` answers and picture reactions), as catalog emojis joined by
spaces; empty: none kept out.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("channel_settings") as b:
        b.add_column(sa.Column("never_emojis", sa.Text(), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("channel_settings") as b:
        b.drop_column("never_emojis")
