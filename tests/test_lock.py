"""constraints.txt pins every dependency pyproject.toml declares, inside its range."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            name, _, version = line.partition("==")
            pins[canonicalize_name(name)] = version.strip()
    return pins


def _declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    raw = [*project["dependencies"], *project["optional-dependencies"]["test"]]
    return [Requirement(r) for r in raw]


def test_every_declared_dependency_is_pinned_within_its_range() -> None:
    pins = _pins()
    for req in _declared():
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is not in constraints.txt: run tools/lock"
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"constraints.txt pins {req.name}=={pins[name]} outside {req.specifier}: run tools/lock"
        )


def test_the_lock_names_the_command_that_regenerates_it() -> None:
    head = (ROOT / "constraints.txt").read_text().splitlines()[:8]
    assert any(line.strip() == "#    tools/lock" for line in head)
