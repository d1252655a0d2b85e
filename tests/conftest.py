"""Shared fixtures. Other test modules may append fixtures here."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import copy_fleet


@pytest.fixture
def fleet(tmp_path: Path) -> Path:
    """A fresh copy of the example fleet that a test may edit."""
    return copy_fleet(tmp_path)
