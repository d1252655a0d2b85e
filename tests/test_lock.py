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
    extras = project["optional-dependencies"].values()
    raw = [*project["dependencies"], *(r for extra in extras for r in extra)]
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


def test_every_install_of_the_project_goes_through_the_lock() -> None:
    # CI, the README's commands and the agent image must install the versions CI tested.
    readme = (ROOT / "README.md").read_text()
    installs = [line for line in readme.splitlines() if "pip install" in line and "'.[" in line]
    assert len(installs) == 2, "the README's two set-up commands each install the project"
    docker = [
        line for line in (ROOT / "Dockerfile").read_text().splitlines() if "pip wheel" in line
    ]
    ci = [
        line for line in (ROOT / ".ci" / "run").read_text().splitlines() if 'pip" install' in line
    ]
    for line in [*installs, *docker, *ci]:
        assert "-c constraints.txt" in line, f"installs without the lock: {line.strip()}"
