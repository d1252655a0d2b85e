"""A fleet as it was at a git revision, read without touching the working tree.

``specc diff --base REV`` renders the fleet twice. The base (and a ``--head`` revision)
is exported with ``git archive <commit> -- <fleet dir>`` into a temporary directory
and rendered from there; the working tree, the index and the repository's worktree
list are never modified. Git runs without a shell, with an argument list, and a
revision is resolved with ``git rev-parse --verify REV^{commit}`` before use.

Note: ``git archive`` honours ``export-ignore`` in the revision's ``.gitattributes``;
a fleet repository should not mark fleet files export-ignore.
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import tempfile
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from specc.errors import Finding, FleetError, GitError, SpeccError
from specc.objects import ClusterRender
from specc.source import extract_archive

#: How the head side is named when it is the working tree.
WORKING_TREE = "working tree"


@dataclass(frozen=True)
class Revision:
    """A revision as the user named it, and the commit it resolved to (None: working tree)."""

    rev: str
    commit: str | None = None


@dataclass
class RevisionRender:
    """The fleet at one revision, rendered; ``present`` is False if it has no fleet folder."""

    revision: Revision
    renders: list[ClusterRender] = field(default_factory=list)
    #: ``fleet.spec.prune.budget`` at this revision (None when absent).
    prune_budget: float | None = None
    present: bool = True
    #: Why the fleet at this revision does not render (the base only: a change that
    #: fixes a broken main must be able to pass); its renders are then empty.
    errors: list[Finding] = field(default_factory=list)


def _git(repo: Path, *args: str) -> str:
    try:
        done = subprocess.run(
            ["git", "-C", str(repo), *args],
            capture_output=True,
            text=True,
            check=False,
        )
    except FileNotFoundError:
        raise GitError("git is not installed (specc diff needs it)") from None
    if done.returncode != 0:
        raise GitError(done.stderr.strip() or f"git {args[0]} failed")
    return done.stdout.strip()


def repository_of(path: Path) -> tuple[Path, str]:
    """Return the top of the git repository holding ``path`` and ``path`` relative to it."""
    if not path.is_dir():
        raise GitError(f"{path}: no such directory")
    try:
        top = Path(_git(path, "rev-parse", "--show-toplevel")).resolve()
    except GitError:
        raise GitError(f"{path}: not inside a git repository") from None
    rel = path.resolve().relative_to(top).as_posix()
    return top, "" if rel == "." else rel


def resolve_revision(repo: Path, rev: str) -> Revision:
    """Return ``rev`` with the commit it names; raise GitError for an unknown revision."""
    if not rev or rev.startswith("-"):
        raise GitError(f"{rev!r} is not a revision")
    try:
        commit = _git(
            repo, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}"
        )
    except GitError:
        commit = ""
    if not commit:
        raise GitError(f"unknown revision {rev!r} in {repo} (not a commit git can find)")
    return Revision(rev, commit)


def export_fleet(repo: Path, commit: str, rel: str, dest: Path) -> Path | None:
    """Extract the fleet folder ``rel`` at ``commit`` under ``dest``; None if it is absent."""
    spec = f"{commit}:{rel}" if rel else f"{commit}^{{tree}}"
    try:
        kind = _git(repo, "cat-file", "-t", spec)
    except GitError:
        return None
    if kind != "tree":
        return None
    args = ["git", "-C", str(repo), "archive", "--format=tar", commit]
    if rel:
        args += ["--", rel]
    with subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        assert proc.stdout is not None
        # Symlinks are kept as written (the loader reports those leaving the fleet);
        # absolute names, traversal, device files and writes through links are refused.
        extract_archive(proc.stdout, dest)
        err = proc.stderr.read().decode("utf-8", "replace") if proc.stderr else ""
    if proc.returncode != 0:
        raise GitError(err.strip() or f"git archive {commit} failed")
    return dest / rel if rel else dest


@contextmanager
def fleet_at(repo: Path, revision: Revision, rel: str) -> Iterator[Path | None]:
    """Yield the fleet folder at ``revision`` in a temporary directory, removed afterwards."""
    assert revision.commit is not None
    with tempfile.TemporaryDirectory(prefix="specc-diff-") as tmp:
        yield export_fleet(repo, revision.commit, rel, Path(tmp))


def render_fleet(root: Path) -> tuple[float, list[ClusterRender]]:
    """Return the prune budget and the checked render of the fleet at ``root``."""
    from specc.pipeline import render_path

    valid, renders = render_path(root)
    return valid.fleet.spec.prune.budget, renders


def render_commit(repo: Path, revision: Revision, rel: str) -> RevisionRender:
    """Return the fleet folder ``rel`` as of ``revision``; FleetError if it does not render."""
    with fleet_at(repo, revision, rel) as root:
        if root is None:
            return RevisionRender(revision, present=False)
        budget, renders = render_fleet(root)
    return RevisionRender(revision, renders, budget)


def _render_base(repo: Path, revision: Revision, rel: str) -> tuple[str, Any]:
    # Runs in a worker process: errors come back as plain data, not pickled exceptions.
    try:
        return "ok", render_commit(repo, revision, rel)
    except FleetError as exc:
        return "fleet", exc.findings
    except SpeccError as exc:
        return "error", str(exc)


def render_sides(
    fleet: Path, base: str, head: str | None, parallel: bool = True
) -> tuple[RevisionRender, RevisionRender]:
    """Return the fleet rendered at ``base`` and at ``head`` (None: the working tree).

    Both revisions are resolved first, so a wrong one fails before any rendering. With
    a spare core, the base renders in a forked worker while this process renders the
    head (about halves the time of a large fleet). A base that does not render comes
    back without renders and with its ``errors`` (everything at the head is then new:
    a change that fixes a broken main can pass); a head that does not render raises
    its FleetError.
    """
    repo, rel = repository_of(fleet)
    base_rev = resolve_revision(repo, base)
    head_rev = resolve_revision(repo, head) if head is not None else None

    def render_head() -> RevisionRender:
        if head_rev is None:
            budget, renders = render_fleet(fleet)
            return RevisionRender(Revision(WORKING_TREE), renders, budget)
        return render_commit(repo, head_rev, rel)

    # Import the stages before forking so that the worker inherits them warm.
    import specc.check
    import specc.compile
    import specc.pipeline  # noqa: F401

    pool = _worker() if parallel else None
    if pool is None:
        before = _base_result(base_rev, _render_base(repo, base_rev, rel))
        return before, render_head()
    with pool:
        future = pool.submit(_render_base, repo, base_rev, rel)
        try:
            after = render_head()
        except SpeccError:
            _base_result(base_rev, future.result())  # a git error at the base comes first
            raise
        return _base_result(base_rev, future.result()), after


def _base_result(revision: Revision, outcome: tuple[str, Any]) -> RevisionRender:
    status, value = outcome
    if status == "fleet":
        return RevisionRender(revision, errors=list(FleetError(value).findings))
    if status == "error":
        raise GitError(value)
    assert isinstance(value, RevisionRender)
    return value


def _worker() -> ProcessPoolExecutor | None:
    """Return a one-process pool forked from this one, or None without a spare core.

    A busy machine (load average above CPUs - 1) has no spare core: a worker there only
    adds the cost of sending the base render back.
    """
    cpus = os.cpu_count() or 1
    if cpus < 2 or "fork" not in multiprocessing.get_all_start_methods():
        return None
    if os.getloadavg()[0] > cpus - 1:
        return None
    return ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("fork"))
