"""What git says about the fleet's working tree (the git binary, never a shell)."""

from __future__ import annotations

import subprocess
from pathlib import Path

#: Suffix of a revision synced from a working tree with uncommitted changes.
DIRTY = "-dirty"


def _git(path: Path, *args: str) -> subprocess.CompletedProcess[str] | None:
    try:
        return subprocess.run(
            ["git", "-C", str(path), *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None


def revision(path: Path) -> str:
    """Return the revision of the fleet at ``path``: its commit, ``<commit>-dirty``, or "".

    ``-dirty`` marks a working tree whose fleet files differ from the commit (edited,
    staged or untracked): what a sync applies from it is not that commit, and the
    cluster's status must not say it is. "" outside a git repository.
    """
    head = _git(path, "rev-parse", "--verify", "HEAD")
    if head is None or head.returncode != 0:
        return ""
    commit = head.stdout.strip()
    dirty = _git(path, "status", "--porcelain", "--", ".")
    if dirty is None or dirty.returncode != 0 or dirty.stdout.strip():
        return commit + DIRTY
    return commit


def head_commit(path: Path) -> str:
    """Return the commit checked out at ``path`` if its tree is clean, else ""."""
    rev = revision(path)
    return "" if rev.endswith(DIRTY) else rev


def commit_of(rev: str) -> str:
    """Return the commit a recorded revision is based on (without ``-dirty``)."""
    return rev[: -len(DIRTY)] if rev.endswith(DIRTY) else rev


def descends(path: Path, ancestor: str, rev: str) -> bool | None:
    """Return whether revision ``rev`` of the fleet at ``path`` has ``ancestor`` in its history.

    Both may carry ``-dirty``: what counts is the commit they are based on. None when it
    cannot be told (not a git checkout, no revision); False when ``ancestor`` is unknown
    to this repository (a copy made before it existed) or not an ancestor.
    """
    base, head = commit_of(ancestor), commit_of(rev)
    if not base or not head:
        return None
    if base == head:
        return True
    known = _git(path, "cat-file", "-e", f"{base}^{{commit}}")
    if known is None:
        return None
    if known.returncode != 0:
        return False
    proc = _git(path, "merge-base", "--is-ancestor", base, head)
    if proc is None or proc.returncode not in (0, 1):
        return None
    return proc.returncode == 0
