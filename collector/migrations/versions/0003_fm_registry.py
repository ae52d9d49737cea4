"""FM licence registry: the table ``fm_stations`` (see :mod:`collector.fm_registry`).

One row per licensed transmitter (frequency and site unique), imported by
``rfhunt registry import``.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

# The model lives in collector.fm_registry, outside collector.store: importing it here
# registers it on collector.store.Base.metadata wherever the schema is migrated, so that the
# metadata and the migrated schema agree.
import collector.fm_registry  # noqa: F401, E402

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ``fm_stations``."""
    op.create_table(
        "fm_stations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("frequency_hz", sa.Double, nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("pi", sa.String(4), nullable=True),
        sa.Column("lat", sa.Double, nullable=False),
        sa.Column("lon", sa.Double, nullable=False),
        sa.Column("erp_w", sa.Double, nullable=True),
        sa.Column("licence", sa.String(64), nullable=True),
        sa.Column("source", sa.String(256), nullable=False),
        sa.Column("imported_utc", sa.Double, nullable=False),
        sa.UniqueConstraint("frequency_hz", "lat", "lon", name="uq_fm_stations_freq_site"),
    )


def downgrade() -> None:
    """Drop ``fm_stations``."""
    op.drop_table("fm_stations")
