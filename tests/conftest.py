"""Shared fixtures. Other test modules may append fixtures here."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import copy_fleet


@pytest.fixture
def fleet(tmp_path: Path) -> Path:
    """A fresh copy of the example fleet that a test may edit."""
    return copy_fleet(tmp_path)


# API server double and real control plane: `apiserver` (always the double, fresh), `api`
# (one double per module, emptied per test), `kube` (each test twice: [double] and [real])
# and `real_kube` (the real tier alone), from specc.testing.pytest_plugin.
pytest_plugins = ["specc.testing.pytest_plugin"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave `slow` tests (soak, large fault runs) out unless `-m` asks for them.

    The default run stays fast; CI runs them in a step of their own: `pytest -m slow`.
    """
    if config.option.markexpr:
        return
    slow = [item for item in items if item.get_closest_marker("slow")]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if not item.get_closest_marker("slow")]
