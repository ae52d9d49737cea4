"""Evidence snippets: the ``evidence`` table (IQ or audio kept for a case).

Revision ID: 0004
Revises: 0003 (chained after 0003_fm_registry, which another change added meanwhile; two
heads would stop every Store.open)
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import collector.evidence  # noqa: F401 - registers the model on Base.metadata wherever migrations run

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the ``evidence`` table and its indexes."""
    op.create_table(
        "evidence",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("detection_id", sa.Integer, sa.ForeignKey("detections.id"), nullable=False),
        sa.Column("emitter_id", sa.Integer, nullable=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("sample_rate_hz", sa.Double, nullable=False),
        sa.Column("center_freq_hz", sa.Double, nullable=False),
        sa.Column("t_utc", sa.Double, nullable=False),
        sa.Column("sensor_id", sa.String(64), nullable=False),
        sa.Column("lat", sa.Double, nullable=True),
        sa.Column("lon", sa.Double, nullable=True),
        sa.Column("n_samples", sa.Integer, nullable=False),
        sa.Column("sha512", sa.String(128), nullable=False),
        sa.Column("path", sa.String(512), nullable=True),
        sa.Column("blob", sa.LargeBinary, nullable=True),
    )
    op.create_index("ix_evidence_detection_id", "evidence", ["detection_id"])
    op.create_index("ix_evidence_emitter_id", "evidence", ["emitter_id"])
    op.create_index("ix_evidence_sha512", "evidence", ["sha512"])


def downgrade() -> None:
    """Drop the ``evidence`` table."""
    op.drop_table("evidence")
