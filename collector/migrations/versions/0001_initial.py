"""Initial schema: sensors, sensor_positions, emitters, detections.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the four tables and their indexes."""
    op.create_table(
        "sensors",
        sa.Column("sensor_id", sa.String(64), primary_key=True),
        sa.Column("mobile", sa.Boolean, nullable=True),
        sa.Column("lat", sa.Double, nullable=True),
        sa.Column("lon", sa.Double, nullable=True),
        sa.Column("last_position_utc", sa.Double, nullable=True),
        sa.Column("last_heartbeat_utc", sa.Double, nullable=True),
        sa.Column("samples_read", sa.BigInteger, nullable=True),
        sa.Column("dropped_samples", sa.BigInteger, nullable=True),
        sa.Column("source_state", sa.String(256), nullable=True),
    )
    op.create_table(
        "sensor_positions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("sensor_id", sa.String(64), sa.ForeignKey("sensors.sensor_id"), nullable=False),
        sa.Column("t_utc", sa.Double, nullable=False),
        sa.Column("lat", sa.Double, nullable=False),
        sa.Column("lon", sa.Double, nullable=False),
        sa.UniqueConstraint("sensor_id", "t_utc", name="uq_sensor_positions_sensor_t"),
    )
    op.create_table(
        "emitters",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("assoc_key", sa.String(128), nullable=False, unique=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("freq_hz", sa.Double, nullable=False),
        sa.Column("channel", sa.Integer, nullable=True),
        sa.Column("first_seen_utc", sa.Double, nullable=True),
        sa.Column("last_seen_utc", sa.Double, nullable=True),
        sa.Column("n_detections", sa.Integer, nullable=False),
        sa.Column("lat", sa.Double, nullable=True),
        sa.Column("lon", sa.Double, nullable=True),
        sa.Column("semi_major_m", sa.Double, nullable=True),
        sa.Column("semi_minor_m", sa.Double, nullable=True),
        sa.Column("orientation_deg", sa.Double, nullable=True),
        sa.Column("est_power_dbm", sa.Double, nullable=True),
        sa.Column("path_loss_exponent", sa.Double, nullable=True),
        sa.Column("rms_residual_db", sa.Double, nullable=True),
        sa.Column("underdetermined", sa.Boolean, nullable=True),
        sa.Column("verdict", sa.String(32), nullable=True),
        sa.Column("reasons", sa.JSON, nullable=False),
        sa.Column("updated_utc", sa.Double, nullable=True),
    )
    op.create_index("ix_emitters_kind", "emitters", ["kind"])
    op.create_table(
        "detections",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("sensor_id", sa.String(64), sa.ForeignKey("sensors.sensor_id"), nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("t_utc", sa.Double, nullable=False),
        sa.Column("sensor_lat", sa.Double, nullable=False),
        sa.Column("sensor_lon", sa.Double, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("freq_hz", sa.Double, nullable=False),
        sa.Column("channel", sa.Integer, nullable=True),
        sa.Column("bandwidth_hz", sa.Double, nullable=False),
        sa.Column("power_dbm", sa.Double, nullable=False),
        sa.Column("snr_db", sa.Double, nullable=False),
        sa.Column("features", sa.JSON, nullable=False),
        sa.Column("emitter_id", sa.Integer, sa.ForeignKey("emitters.id"), nullable=True),
        sa.UniqueConstraint("sensor_id", "seq", name="uq_detections_sensor_seq"),
    )
    op.create_index("ix_detections_t_utc", "detections", ["t_utc"])
    op.create_index("ix_detections_emitter_id", "detections", ["emitter_id"])


def downgrade() -> None:
    """Drop everything this revision created."""
    op.drop_table("detections")
    op.drop_table("emitters")
    op.drop_table("sensor_positions")
    op.drop_table("sensors")
