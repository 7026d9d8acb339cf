"""Durable event inbox, idempotent reaction logs, hashed admin ids, salt out of the database.

- ``processed_events`` becomes the inbox: an event is ``pending`` (with its payload, so it
  can be replayed, and a lease so only one worker runs it) until its actions are done,
  then ``done`` (payload dropped) or ``failed``. Rows of revision 0001 were done.
- ``reaction_events.event_id``: a replayed reaction event is logged once.
- ``admin_audit.user_id`` → ``user_hash``: existing ids are hashed with the salt that
  0001 kept in ``bot_meta`` (or, with none there, with a throwaway salt, which makes them
  unlinkable). The salt itself moves out of the database when the bot next starts.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

import hashlib
import hmac
import secrets

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("processed_events") as b:
        b.add_column(sa.Column("status", sa.String(16), nullable=False, server_default="done"))
        b.add_column(sa.Column("payload", sa.Text(), nullable=True))
        b.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        b.add_column(sa.Column("lease_until", sa.Float(), nullable=False, server_default="0"))
    op.create_index("ix_processed_events_pending", "processed_events", ["status", "lease_until"])
    with op.batch_alter_table("reaction_events") as b:
        b.add_column(sa.Column("event_id", sa.String(128), nullable=True))
        b.create_unique_constraint("uq_reaction_event", ["platform", "event_id"])

    conn = op.get_bind()
    row = conn.execute(sa.text("SELECT value FROM bot_meta WHERE key = 'user_salt'")).first()
    salt = (row[0] if row else secrets.token_hex(32)).encode()
    with op.batch_alter_table("admin_audit") as b:
        b.add_column(sa.Column("user_hash", sa.String(64), nullable=True))
    audit = conn.execute(sa.text("SELECT id, platform, user_id FROM admin_audit")).all()
    for rid, platform, user_id in audit:
        h = hmac.new(salt, f"{platform}:{user_id}".encode(), hashlib.sha256).hexdigest()
        conn.execute(sa.text("UPDATE admin_audit SET user_hash = :h WHERE id = :i"), {"h": h, "i": rid})
    with op.batch_alter_table("admin_audit") as b:
        b.alter_column("user_hash", existing_type=sa.String(64), nullable=False)
        b.drop_column("user_id")


def downgrade() -> None:
    with op.batch_alter_table("admin_audit") as b:
        b.add_column(sa.Column("user_id", sa.String(64), nullable=False, server_default="unknown"))
        b.drop_column("user_hash")
    with op.batch_alter_table("reaction_events") as b:
        b.drop_constraint("uq_reaction_event", type_="unique")
        b.drop_column("event_id")
    op.drop_index("ix_processed_events_pending", table_name="processed_events")
    with op.batch_alter_table("processed_events") as b:
        b.drop_column("lease_until")
        b.drop_column("attempts")
        b.drop_column("payload")
        b.drop_column("status")
