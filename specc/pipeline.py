"""The stages chained: path → loaded → validated (→ compiled → checked in later stages)."""

from __future__ import annotations

from pathlib import Path

from specc.load import load_fleet
from specc.validate import ValidFleet, validate_fleet


def validate_path(root: Path) -> ValidFleet:
    """Return the validated fleet at ``root``; raise a FleetError listing every problem."""
    return validate_fleet(load_fleet(root))
