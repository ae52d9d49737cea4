"""Where the project's shared test data lives: ``../shared`` beside the repository (as on CI),
or the folder named by the environment variable ``RFHUNT_SHARED_DIR``."""

import os
from pathlib import Path

import pytest

SHARED_DIR = Path(os.environ.get("RFHUNT_SHARED_DIR") or Path(__file__).resolve().parents[1].parent / "shared")
DATA_DIR = SHARED_DIR / "data"


def requires(path: Path) -> pytest.MarkDecorator:
    """Skip, saying which file is missing, when a piece of shared data is absent."""
    return pytest.mark.skipif(not path.exists(), reason=f"shared test data not found: {path} "
                              "(set RFHUNT_SHARED_DIR to the shared/ folder)")
