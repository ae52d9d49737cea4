"""Fixtures of the map tests: one simulated city, built once per session."""

from __future__ import annotations

import pytest

from tests.mapping.sim_city import SimCity, build


@pytest.fixture(scope="session")
def city(tmp_path_factory) -> SimCity:
    """The built-in city through the real collector, with two evidence snippets (see sim_city)."""
    return build(tmp_path_factory.mktemp("city"))
