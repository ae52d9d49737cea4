"""Maps rendered from the collector's store (never from sensors)."""
