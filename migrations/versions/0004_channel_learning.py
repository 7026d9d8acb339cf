"""``channel_settings.learning``: whether a channel's message texts are kept to learn from
the reactions they get (off unless an admin turns it on; the playground turns its own on).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("channel_settings") as b:
        b.add_column(sa.Column("learning", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("channel_settings") as b:
        b.drop_column("learning")
