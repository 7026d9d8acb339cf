"""People's data: who wrote a stored message, so that forget-me and export can find it.

- ``predictions.author_hash``: the salted hash of the message's author (or of the caller
  of ``/emojify``); rows written before this revision have none (their author is unknown,
  and the retention period removes them).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("predictions") as b:
        b.add_column(sa.Column("author_hash", sa.String(64), nullable=True))
    op.create_index("ix_predictions_author_hash", "predictions", ["author_hash"])
    op.create_index("ix_reaction_events_user_hash", "reaction_events", ["user_hash"])


def downgrade() -> None:
    op.drop_index("ix_reaction_events_user_hash", table_name="reaction_events")
    op.drop_index("ix_predictions_author_hash", table_name="predictions")
    with op.batch_alter_table("predictions") as b:
        b.drop_column("author_hash")
