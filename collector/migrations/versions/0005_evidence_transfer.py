"""Evidence sent by sensors: ``evidence_parts`` (chunks until a snippet is whole) and
``evidence_requests`` (what the collector asks sensors for).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import collector.evidence_ingest  # noqa: F401 - registers the models on Base.metadata wherever migrations run

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create both tables and their indexes."""
    op.create_table(
        "evidence_parts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("sensor_id", sa.String(64), nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("detection_seq", sa.BigInteger, nullable=False),
        sa.Column("request_id", sa.String(64), nullable=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("sample_rate_hz", sa.Double, nullable=False),
        sa.Column("center_freq_hz", sa.Double, nullable=False),
        sa.Column("t_utc", sa.Double, nullable=False),
        sa.Column("n_samples", sa.Integer, nullable=False),
        sa.Column("sha512", sa.String(128), nullable=False),
        sa.Column("part", sa.Integer, nullable=False),
        sa.Column("parts", sa.Integer, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=True),
        sa.Column("done", sa.Boolean, nullable=False),
        sa.Column("received_utc", sa.Double, nullable=False),
        sa.UniqueConstraint("sensor_id", "seq", name="uq_evidence_parts_sensor_seq"),
    )
    op.create_index("ix_evidence_parts_snippet", "evidence_parts", ["sensor_id", "detection_seq", "sha512"])
    op.create_index("ix_evidence_parts_done", "evidence_parts", ["done"])
    op.create_table(
        "evidence_requests",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("created_utc", sa.Double, nullable=False),
        sa.Column("expires_utc", sa.Double, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("freq_hz", sa.Double, nullable=False),
        sa.Column("seconds", sa.Double, nullable=False),
        sa.Column("want", sa.String(32), nullable=False),
        sa.Column("emitter_id", sa.Integer, nullable=True),
        sa.Column("sensor_id", sa.String(64), nullable=True),
        sa.Column("reason", sa.String(256), nullable=False),
        sa.Column("served_utc", sa.Double, nullable=True),
        sa.Column("served_by", sa.String(64), nullable=True),
    )
    op.create_index("ix_evidence_requests_expires_utc", "evidence_requests", ["expires_utc"])
    op.create_index("ix_evidence_requests_emitter_id", "evidence_requests", ["emitter_id"])


def downgrade() -> None:
    """Drop both tables."""
    op.drop_table("evidence_requests")
    op.drop_table("evidence_parts")
