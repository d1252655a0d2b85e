"""Rendering results for people and machines: the last step of every command."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from specc.errors import Finding

if TYPE_CHECKING:  # the sync package imports the kubernetes client lazily; keep it so
    from specc.sync.apply import SyncResult
    from specc.sync.plan import Plan


def display_path(path: str, root: Path | None, in_repository: bool = False) -> str:
    """Return a finding's path (relative to the fleet ``root``) as the user would open it.

    That is relative to the current directory, or under GitHub Actions (and with
    ``in_repository``, for a pull-request comment) to the repository root, where
    annotations and problem matchers look for files (the folder holding ``.git``, else
    ``$GITHUB_WORKSPACE``). A file outside that folder keeps
    the spelling the user gave the fleet (``../fleet/…``, or absolute).
    """
    if root is None:
        return path
    full = Path(path) if os.path.isabs(path) else root / path
    absolute = os.path.abspath(full)
    repository = in_repository or in_github_actions()
    base = _repository_root(os.path.abspath(root)) if repository else None
    if repository and base is None:
        # A checkout without .git (a downloaded archive): Actions' own idea of the root.
        base = os.environ.get("GITHUB_WORKSPACE") or None
    rel = os.path.relpath(absolute, base or os.getcwd())
    if rel != os.pardir and not rel.startswith(os.pardir + os.sep):
        return Path(rel).as_posix()
    if not root.is_absolute():
        return Path(os.path.normpath(full)).as_posix()
    return Path(absolute).as_posix()


@functools.lru_cache(maxsize=8)
def _repository_root(folder: str) -> str | None:
    """Return the nearest folder at or above ``folder`` holding ``.git``, else None."""
    current = Path(folder)
    for candidate in (current, *current.parents):
        if (candidate / ".git").exists():
            return str(candidate)
    return None


def finding_lines(
    findings: Iterable[Finding], root: Path | None = None, in_repository: bool = False
) -> list[str]:
    """Return one ``path:line:col: error: message`` line per finding."""
    return [f.format(display_path(f.position.path, root, in_repository)) for f in findings]


def findings_json(findings: Iterable[Finding], root: Path | None = None) -> list[dict[str, Any]]:
    """Return the findings as JSON objects whose ``file`` is the path the user opens."""
    return [f.to_dict(display_path(f.position.path, root)) for f in findings]


def github_annotations(findings: Iterable[Finding], root: Path | None = None) -> str:
    """Return GitHub Actions ``::error`` workflow commands for ``findings``.

    Finding paths are relative to the fleet ``root``; GitHub wants them relative to the
    repository root.
    """
    lines = []
    for f in findings:
        props = f"file={_escape_prop(display_path(f.position.path, root))}"
        if f.position.line:
            props += f",line={f.position.line},col={f.position.column}"
        lines.append(f"::{f.severity} {props}::{_escape_data(f.text)}")
    return "\n".join(lines)


def in_github_actions() -> bool:
    return os.environ.get("GITHUB_ACTIONS") == "true"


# https://github.com/actions/toolkit/blob/main/packages/core/src/command.ts
def _escape_data(s: str) -> str:
    return s.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_prop(s: str) -> str:
    return _escape_data(s).replace(":", "%3A").replace(",", "%2C")


def version_info() -> dict[str, Any]:
    """Return what ``specc version`` prints: version, distribution, Python, Kubernetes."""
    import platform
    from importlib import metadata

    from specc import DISTRIBUTION, __version__
    from specc.spec.fleet import SUPPORTED_VERSIONS

    try:
        installed: str | None = metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        installed = None
    return {
        "version": __version__,
        "distribution": DISTRIBUTION,
        "installed": installed,
        "python": platform.python_version(),
        "kubernetesVersions": list(SUPPORTED_VERSIONS),
    }


def status_json(data: dict[str, str]) -> dict[str, Any]:
    """Return the status an ApplySet parent records (all strings: it is a ConfigMap's
    data) with its numbers as numbers and ``lastCounts`` as a mapping of counts."""
    out: dict[str, Any] = dict(data)
    for key, kind in (("objects", int), ("pruneBudget", float)):
        if key in out:
            with contextlib.suppress(ValueError):  # not written by specc: left as it is
                out[key] = kind(out[key])
    counts = out.get("lastCounts")
    if isinstance(counts, str):
        parsed: dict[str, int] = {}
        for part in filter(None, counts.split(",")):
            word, _, n = part.partition("=")
            if not n.isdigit():
                break
            parsed[word] = int(n)
        else:
            out["lastCounts"] = parsed
    return out


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False) + "\n")


def _abbrev(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, sort_keys=True) if not isinstance(value, str) else value
    text = text.replace("\n", "\\n")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def plan_lines(plan: Plan) -> list[str]:
    """Return a plan as lines for a terminal: one per object that changes, drift first."""
    lines = []
    for entry in plan.entries:
        if entry.action == "unchanged":
            continue
        line = f"{entry.action:<10} {entry.key}"
        if entry.reason:
            line += f"  ({entry.reason})"
        if entry.refusal:
            line += f"  refused: {entry.refusal}"
        lines.append(line)
        for c in entry.changes:
            if c.removed:
                lines.append(f"    - {c.path}: {_abbrev(c.live)} (no longer declared)")
            else:
                who = f"  [drift: set by {c.setter}]" if c.manager else ""
                lines.append(f"    ~ {c.path}: {_abbrev(c.live)} -> {_abbrev(c.desired)}{who}")
    return lines


def print_sync(result: SyncResult) -> None:
    """Print a sync or plan result as a table with counts, using rich."""
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    # Not a terminal (a CI log, a file): plain lines as long as they need, never wrapped at
    # rich's default 80 columns or cut to fit.
    plain = not console.is_terminal
    changed = [r for r in result.results if r.outcome != "unchanged"]
    rows = []
    for r in changed:
        detail = r.message
        if r.taken:
            detail += (
                (" " if detail else "") + "took " + ", ".join(f"{f} from {m}" for f, m in r.taken)
            )
        rows.append((str(r.key), r.outcome, detail))
    if rows and plain:
        head = ("OBJECT", "RESULT", "DETAIL")
        w0 = max(len(x[0]) for x in [head, *rows])
        w1 = max(len(x[1]) for x in [head, *rows])
        for row in [head, *rows]:
            sys.stdout.write(f"{row[0]:<{w0}}  {row[1]:<{w1}}  {row[2]}".rstrip() + "\n")
    elif rows:
        table = Table(show_header=True, header_style="bold", box=None)
        table.add_column("OBJECT")
        table.add_column("RESULT")
        table.add_column("DETAIL", overflow="fold")
        for row in rows:
            table.add_row(*row)
        console.print(table)
    lines = [line for line in plan_lines(result.plan) if line.startswith("    ")]
    lines += [f"refused {reason}" for reason in result.refused]
    counts = ", ".join(f"{n} {k}" for k, n in result.counts().items() if n)
    suffix = " (dry run)" if result.dry_run else ""
    lines.append(f"cluster {result.cluster}: {counts or 'nothing to do'}{suffix}")
    if plain:
        sys.stdout.write("".join(line + "\n" for line in lines))
        sys.stdout.flush()
        return
    for line in lines:
        style = "bold red" if line.startswith("refused ") else None
        console.print(line, markup=False, style=style)
