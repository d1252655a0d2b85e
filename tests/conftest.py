"""Shared fixtures. Other test modules may append fixtures here."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import copy_fleet


@pytest.fixture
def fleet(tmp_path: Path) -> Path:
    """A fresh copy of the example fleet that a test may edit."""
    return copy_fleet(tmp_path)


# API server double: `apiserver` (always the double) and `kube` (the double, or the
# cluster of $SPECC_TEST_KUBECONFIG), from specc.testing.pytest_plugin.
from specc.testing.pytest_plugin import apiserver, kube  # noqa: E402, F401
