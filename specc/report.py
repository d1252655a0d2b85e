"""Rendering results for people and machines: the last step of every command."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from specc.errors import Finding


def findings_json(findings: Iterable[Finding]) -> str:
    return json.dumps({"errors": [f.to_dict() for f in findings]}, indent=2)


def github_annotations(findings: Iterable[Finding], root: Path | None = None) -> str:
    """Return GitHub Actions ``::error`` workflow commands for ``findings``.

    Finding paths are relative to the fleet ``root``; GitHub wants them relative to the
    repository, which is the working directory of a workflow step.
    """
    lines = []
    for f in findings:
        path = f.position.path
        if root is not None and not os.path.isabs(path):
            path = Path(os.path.relpath(root / path)).as_posix()
        props = f"file={_escape_prop(path)}"
        if f.position.line:
            props += f",line={f.position.line},col={f.position.column}"
        text = f.message if not f.field_path else f"{f.field_path}: {f.message}"
        if f.subject:
            text = f"{f.subject}: {text}"
        lines.append(f"::error {props}::{_escape_data(text)}")
    return "\n".join(lines)


def in_github_actions() -> bool:
    return os.environ.get("GITHUB_ACTIONS") == "true"


# https://github.com/actions/toolkit/blob/main/packages/core/src/command.ts
def _escape_data(s: str) -> str:
    return s.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_prop(s: str) -> str:
    return _escape_data(s).replace(":", "%3A").replace(",", "%2C")


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False) + "\n")
