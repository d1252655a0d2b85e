"""What git says about the fleet's working tree (the git binary, never a shell)."""

from __future__ import annotations

import subprocess
from pathlib import Path


def head_commit(path: Path) -> str:
    """Return the commit checked out at ``path`` if its tree is clean, else ""."""
    try:
        head = subprocess.run(
            ["git", "-C", str(path), "rev-parse", "--verify", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        if head.returncode != 0:
            return ""
        dirty = subprocess.run(
            ["git", "-C", str(path), "status", "--porcelain", "--", "."],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    if dirty.returncode != 0 or dirty.stdout.strip():
        return ""
    return head.stdout.strip()
