"""Rogue-cell judgement: reference and baseline cells, alerts, emitter scores.

Adds the tables ``reference_cells`` (imported operator lists and OpenCelliD/MLS exports),
``baseline_cells`` (cells learned from the monitoring history) and ``alerts`` (one per
rogue emitter), the emitter columns ``score``, ``indicators`` and ``identity``, and an index
on detections by (sensor, channel, time) for association by decoded identity.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the three tables, the emitter columns and the detection index."""
    op.create_table(
        "reference_cells",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("mcc", sa.Integer, nullable=False),
        sa.Column("mnc", sa.Integer, nullable=False),
        sa.Column("lac", sa.Integer, nullable=False),
        sa.Column("cid", sa.BigInteger, nullable=False),
        sa.Column("arfcn", sa.Integer, nullable=True),
        sa.Column("bsic", sa.Integer, nullable=True),
        sa.Column("lat", sa.Double, nullable=False),
        sa.Column("lon", sa.Double, nullable=False),
        sa.Column("range_m", sa.Double, nullable=True),
        sa.Column("imported_utc", sa.Double, nullable=False),
        sa.UniqueConstraint("source", "mcc", "mnc", "lac", "cid", name="uq_reference_cells_source_cgi"),
    )
    op.create_table(
        "baseline_cells",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("mcc", sa.Integer, nullable=False),
        sa.Column("mnc", sa.Integer, nullable=False),
        sa.Column("lac", sa.Integer, nullable=False),
        sa.Column("cid", sa.BigInteger, nullable=False),
        sa.Column("arfcn", sa.Integer, nullable=False),
        sa.Column("bsic", sa.Integer, nullable=False),
        sa.Column("first_seen_utc", sa.Double, nullable=False),
        sa.Column("last_seen_utc", sa.Double, nullable=False),
        sa.Column("n_sightings", sa.Integer, nullable=False),
        sa.Column("lat", sa.Double, nullable=True),
        sa.Column("lon", sa.Double, nullable=True),
        sa.Column("power", sa.JSON, nullable=False),
        sa.Column("learned_utc", sa.Double, nullable=False),
        sa.UniqueConstraint("mcc", "mnc", "lac", "cid", "arfcn", "bsic", name="uq_baseline_cells_cell"),
    )
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("emitter_id", sa.Integer, sa.ForeignKey("emitters.id"), nullable=False, unique=True),
        sa.Column("raised_utc", sa.Double, nullable=False),
        sa.Column("updated_utc", sa.Double, nullable=False),
        sa.Column("first_seen_utc", sa.Double, nullable=True),
        sa.Column("verdict", sa.String(32), nullable=False),
        sa.Column("score", sa.Double, nullable=False),
        sa.Column("channel", sa.Integer, nullable=True),
        sa.Column("identity", sa.String(128), nullable=True),
        sa.Column("lat", sa.Double, nullable=True),
        sa.Column("lon", sa.Double, nullable=True),
        sa.Column("indicators", sa.JSON, nullable=False),
        sa.Column("n_updates", sa.Integer, nullable=False),
    )
    with op.batch_alter_table("emitters") as batch:
        batch.add_column(sa.Column("score", sa.Double, nullable=True))
        batch.add_column(sa.Column("indicators", sa.JSON, nullable=True))
        batch.add_column(sa.Column("identity", sa.String(128), nullable=True))
    op.create_index("ix_detections_sensor_channel_t", "detections", ["sensor_id", "channel", "t_utc"])


def downgrade() -> None:
    """Drop everything this revision added."""
    op.drop_index("ix_detections_sensor_channel_t", table_name="detections")
    with op.batch_alter_table("emitters") as batch:
        batch.drop_column("identity")
        batch.drop_column("indicators")
        batch.drop_column("score")
    op.drop_table("alerts")
    op.drop_table("baseline_cells")
    op.drop_table("reference_cells")
