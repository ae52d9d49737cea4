"""The files in deploy/ are what operators copy: every configuration must load, and what the
compose file and the systemd units refer to must exist."""

from __future__ import annotations

import re
from pathlib import Path

from collector.config import load_collector_config
from sensors.config import load_sensor_config

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"


def test_configurations_load():
    assert load_collector_config(DEPLOY / "collector.toml").bind.startswith("tcp://")
    pg = load_collector_config(DEPLOY / "collector-pg.toml")
    assert pg.db_url.startswith("postgresql+psycopg://") and "@db:5432/" in pg.db_url
    s = load_sensor_config(DEPLOY / "sensor.toml")
    assert s.outbox and s.outbox.startswith("/var/lib/rfhunt/")


def test_compose_and_units_refer_to_existing_files():
    compose = (DEPLOY / "docker-compose.yml").read_text()
    assert "./collector-pg.toml:/etc/rfhunt/collector.toml:ro" in compose
    assert "dockerfile: deploy/Dockerfile" in compose and (DEPLOY / "Dockerfile").is_file()
    for copied in re.findall(r"^COPY (\S+) ", (DEPLOY / "Dockerfile").read_text(), flags=re.M):
        assert (DEPLOY.parent / copied).exists(), copied
    for unit in ("rfhunt-sensor@.service", "rfhunt-collector.service"):
        text = (DEPLOY / "systemd" / unit).read_text()
        assert re.search(r"^ExecStart=/opt/rfhunt/.venv/bin/rfhunt (sensor|collector) --config ", text, flags=re.M)
        assert "KillSignal=SIGTERM" in text and "Restart=always" in text
