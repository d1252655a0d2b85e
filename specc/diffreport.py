"""Rendering a FleetDiff: text for a terminal, JSON for machines, markdown for a PR comment.

The last step of ``specc diff``; nothing here decides what changed.

JSON shape (stable; keys are only ever added)::

    {"kind": "FleetDiff",
     "base": {"rev": "main", "commit": "<sha>"}, "head": {"rev": "working tree", "commit": null},
     "changed": true, "pruneBudget": 0.25,
     "summary": {"clusters", "clustersChanged", "added", "removed", "changed",
                 "sourceMoved", "warnings"},
     "clusters": [{"cluster": "dev", "status": "added|removed|changed|unchanged",
                   "counts": {"added", "removed", "changed", "sourceMoved", "unchanged"},
                   "prunes": 1, "pruneShare": 0.03,
                   "added": [OBJECT], "removed": [OBJECT + "warnings": [REASON]],
                   "changed": [OBJECT + "replaces": "Kind/ns/name" | null,
                               "fields": [{"path", "op": "added|removed|changed",
                                           "old"?, "new"?}]],
                   "sourceMoved": [OBJECT],
                   "warnings": [{"reason", "object", "message"}]}]}

    OBJECT = {"object": "Kind/ns/name", "apiVersion", "kind", "namespace", "name",
              "source": "path:line", "origin": "Kind/team/name"}
    REASON = "protected" | "data-volumes" | "mass-prune" | "cluster-removed"

JSON values are complete (Secret data masked); text and markdown abbreviate long
values and show multi-line values (config files) as a unified diff.
"""

from __future__ import annotations

import difflib
import html
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from specc.diff import MASK, ClusterDiff, FieldChange, FleetDiff, ObjectChange, ObjectEntry

#: First line of the markdown, so a workflow can find and update its one comment.
MARKER = "<!-- specc-diff -->"
#: GitHub refuses comments over 65536 characters; stay below with room for the footer.
MARKDOWN_LIMIT = 60_000
VALUE_LIMIT = 80
DIFF_LINES = 40
LINE_LIMIT = 160


@dataclass(frozen=True)
class Side:
    """One side of a diff as the user named it: a revision and the commit it resolved to."""

    rev: str
    commit: str | None = None
    #: The fleet at this side does not render: its errors as ``path:line:col: error: …``
    #: lines and as JSON objects. Everything at the other side is then shown as new.
    errors: tuple[str, ...] = ()
    error_data: tuple[dict[str, Any], ...] = ()

    @property
    def label(self) -> str:
        return f"{self.rev} ({self.commit[:7]})" if self.commit else self.rev

    @property
    def broken_note(self) -> str:
        """Return what a reader of a diff against this broken side must know, or ""."""
        if not self.errors:
            return ""
        n = len(self.errors)
        return (
            f"the fleet at {self.label} does not render ({n} error{'s' if n != 1 else ''}): "
            "every object is shown as added"
        )


#: Errors of a broken side shown in text and markdown (JSON has them all).
SIDE_ERRORS_SHOWN = 50


def _side_error_lines(side: Side, limit: int | None = None) -> list[str]:
    shown = [abbreviate(ln, limit) if limit else ln for ln in side.errors[:SIDE_ERRORS_SHOWN]]
    if len(side.errors) > SIDE_ERRORS_SHOWN:
        shown.append(f"… {len(side.errors) - SIDE_ERRORS_SHOWN} more")
    return shown


# --- values ----------------------------------------------------------------------


def show_value(value: Any, limit: int = VALUE_LIMIT) -> str:
    """Return ``value`` on one line, abbreviated to about ``limit`` characters."""
    if value == MASK:
        return MASK
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return abbreviate(text, limit)


def abbreviate(text: str, limit: int = VALUE_LIMIT) -> str:
    """Return ``text``, or its head and tail with its length when longer than ``limit``."""
    if len(text) <= limit:
        return text
    head = limit * 2 // 3
    tail = limit - head - 1
    return f"{text[:head]}…{text[-tail:]} ({len(text)} chars)"


def _multiline(change: FieldChange) -> bool:
    return any(isinstance(v, str) and "\n" in v for v in (change.old, change.new)) and all(
        v is None or isinstance(v, str) for v in (change.old, change.new)
    )


def text_diff(old: str | None, new: str | None, max_lines: int = DIFF_LINES) -> list[str]:
    """Return a compact unified diff (one line of context) of two multi-line strings."""
    lines = list(
        difflib.unified_diff((old or "").splitlines(), (new or "").splitlines(), n=1, lineterm="")
    )[2:]  # drop the ---/+++ header
    out = [abbreviate(line, LINE_LIMIT) for line in lines[:max_lines]]
    if len(lines) > max_lines:
        out.append(f"… {len(lines) - max_lines} more lines")
    return out


def field_lines(change: FieldChange) -> list[str]:
    """Return a field change as diff lines: ``- path: old`` / ``+ path: new``."""
    if _multiline(change):
        out = [f"  {change.path}:"]
        for line in text_diff(change.old, change.new):
            out.append(f"  {line}" if line.startswith(("@@", "…")) else f"{line[:1]}   {line[1:]}")
        return out
    out = []
    if change.op != "added":
        out.append(f"- {change.path}: {show_value(change.old)}")
    if change.op != "removed":
        out.append(f"+ {change.path}: {show_value(change.new)}")
    return out


# --- JSON ------------------------------------------------------------------------


def diff_json(diff: FleetDiff, base: Side, head: Side) -> dict[str, Any]:
    """Return the documented JSON form of ``diff``."""
    return {
        "kind": "FleetDiff",
        "base": _side_json(base),
        "head": _side_json(head),
        "changed": diff.has_changes,
        "pruneBudget": diff.prune_budget,
        "summary": _summary(diff),
        "clusters": [_cluster_json(c) for c in diff.clusters],
    }


def _side_json(side: Side) -> dict[str, Any]:
    out: dict[str, Any] = {"rev": side.rev, "commit": side.commit}
    if side.errors:
        out["renders"] = False
        out["errors"] = list(side.error_data)
    return out


def _summary(diff: FleetDiff) -> dict[str, int]:
    cs = diff.clusters
    return {
        "clusters": len(cs),
        "clustersChanged": sum(c.has_changes for c in cs),
        "added": sum(len(c.added) for c in cs),
        "removed": sum(len(c.removed) for c in cs),
        "changed": sum(len(c.changed) for c in cs),
        "sourceMoved": sum(len(c.source_moved) for c in cs),
        "warnings": sum(len(c.warnings) for c in cs),
    }


def _object_json(e: ObjectEntry) -> dict[str, Any]:
    return {
        "object": e.ref,
        "apiVersion": e.api_version,
        "kind": e.key.kind,
        "namespace": e.key.namespace,
        "name": e.key.name,
        "source": e.source,
        "origin": e.origin,
    }


def _field_json(f: FieldChange) -> dict[str, Any]:
    out: dict[str, Any] = {"path": f.path, "op": f.op}
    if f.op != "added":
        out["old"] = f.old
    if f.op != "removed":
        out["new"] = f.new
    return out


def _cluster_json(c: ClusterDiff) -> dict[str, Any]:
    flags: dict[str, list[str]] = {}
    for w in c.warnings:
        if w.subject:
            flags.setdefault(w.subject, []).append(w.reason)
    return {
        "cluster": c.cluster,
        "status": c.status,
        "counts": {
            "added": len(c.added),
            "removed": len(c.removed),
            "changed": len(c.changed),
            "sourceMoved": len(c.source_moved),
            "unchanged": c.unchanged,
        },
        "prunes": c.prunes,
        "pruneShare": round(c.prune_share, 4),
        "added": [_object_json(e) for e in c.added],
        "removed": [{**_object_json(e), "warnings": flags.get(e.ref, [])} for e in c.removed],
        "changed": [
            {
                **_object_json(ch.entry),
                "replaces": str(ch.replaces) if ch.replaces else None,
                "fields": [_field_json(f) for f in ch.fields],
            }
            for ch in c.changed
        ],
        "sourceMoved": [_object_json(e) for e in c.source_moved],
        "warnings": [
            {"reason": w.reason, "object": w.subject, "message": w.message} for w in c.warnings
        ],
    }


# --- text ------------------------------------------------------------------------


def counts_line(c: ClusterDiff) -> str:
    """Return ``1 added, 2 changed, 3 source moved`` (or ``no changes``) for a cluster."""
    parts = [
        f"{n} {what}"
        for n, what in (
            (len(c.added), "added"),
            (len(c.removed), "removed"),
            (len(c.changed), "changed"),
        )
        if n
    ]
    text = ", ".join(parts) if parts else "no changes"
    if c.source_moved:
        text += f" ({len(c.source_moved)} only moved source lines)"
    return text


def _status_note(c: ClusterDiff) -> str:
    return {"added": " [new cluster]", "removed": " [cluster removed]"}.get(c.status, "")


def _replaces(ch: ObjectChange) -> str:
    return f" (replaces {ch.replaces.name})" if ch.replaces else ""


def diff_text(diff: FleetDiff, base: Side, head: Side) -> list[tuple[str, str]]:
    """Return the text report as (style, line) pairs; style is a rich style or ""."""
    out: list[tuple[str, str]] = [("bold", f"specc diff {base.label} → {head.label}")]
    if base.errors:
        out.append(("bold yellow", f"note: {base.broken_note}; its errors:"))
        out += [("yellow", "  " + line) for line in _side_error_lines(base)]
    for c in diff.clusters:
        out.append(("", ""))
        out.append(("bold", f"{c.cluster}{_status_note(c)}: {counts_line(c)}"))
        for w in c.warnings:
            out.append(("bold yellow", f"  ! {w.message}"))
        for e in c.added:
            out.append(("green", f"  + {e.ref}  ({e.source})"))
        for e in c.removed:
            out.append(("red", f"  - {e.ref}  ({e.source})"))
        for ch in c.changed:
            out.append(("yellow", f"  ~ {ch.entry.ref}{_replaces(ch)}  ({ch.entry.source})"))
            for f in ch.fields:
                for line in field_lines(f):
                    style = {"-": "red", "+": "green"}.get(line[:1], "")
                    out.append((style, "      " + line))
    s = _summary(diff)
    out.append(("", ""))
    out.append(
        (
            "bold",
            f"{s['clustersChanged']} of {s['clusters']} clusters change: {s['added']} added, "
            f"{s['removed']} removed, {s['changed']} changed; {s['warnings']} warning(s)",
        )
    )
    return out


# --- markdown --------------------------------------------------------------------

# Mid-line, only these can start formatting, links or HTML.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~<>])")


def _md(text: str) -> str:
    """Return ``text`` safe to place in markdown prose: no HTML, no formatting."""
    return _MD_SPECIAL.sub(r"\\\1", text).replace("&", "&amp;")


def _code(text: str) -> str:
    """Return ``text`` as inline code (backticks inside cannot end it)."""
    text = text.replace("\n", " ")
    ticks = max((len(m) for m in re.findall(r"`+", text)), default=0) + 1
    fence = "`" * ticks
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _fenced(lines: list[str], lang: str = "diff") -> str:
    body = "\n".join(lines)
    ticks = max(3, max((len(m) for m in re.findall(r"`+", body)), default=0) + 1)
    fence = "`" * ticks
    return f"{fence}{lang}\n{body}\n{fence}"


def _cluster_md(c: ClusterDiff, with_fields: bool) -> str:
    flags: dict[str, list[str]] = {}
    for w in c.warnings:
        if w.subject:
            flags.setdefault(w.subject, []).append(w.reason)
    parts = [
        "<details>",
        f"<summary><b>{html.escape(c.cluster)}</b>{html.escape(_status_note(c))}: "
        f"{html.escape(counts_line(c))}</summary>",
        "",
    ]
    if c.added:
        parts.append("**Added**\n")
        parts += [f"- {_code(e.ref)} ({_md(e.source)})" for e in c.added]
        parts.append("")
    if c.removed:
        parts.append("**Removed** (sync prunes these)\n")
        for e in c.removed:
            note = "".join(f" **⚠ {_md(r)}**" for r in flags.get(e.ref, []))
            parts.append(f"- {_code(e.ref)} ({_md(e.source)}){note}")
        parts.append("")
    if c.changed:
        parts.append("**Changed**\n")
        for ch in c.changed:
            replaces = f" (replaces {_code(ch.replaces.name)})" if ch.replaces else ""
            parts.append(f"{_code(ch.entry.ref)}{replaces} ({_md(ch.entry.source)})")
            if with_fields:
                lines = [line for f in ch.fields for line in field_lines(f)]
                parts += ["", _fenced(lines), ""]
            else:
                parts.append(f"{len(ch.fields)} field(s) changed\n")
    parts += ["</details>", ""]
    return "\n".join(parts)


def diff_markdown(diff: FleetDiff, base: Side, head: Side, limit: int = MARKDOWN_LIMIT) -> str:
    """Return a PR comment: marker, summary table, prune warnings, details per cluster.

    Stays under ``limit`` characters: when the field diffs do not fit, later clusters
    list only the objects, and then only their counts.
    """
    s = _summary(diff)
    head_parts = [
        MARKER,
        "### specc diff",
        "",
        f"{_code(base.label)} → {_code(head.label)}: "
        + (
            f"**{s['clustersChanged']} of {s['clusters']} clusters change**"
            if diff.has_changes
            else "no changes to any cluster"
        ),
        "",
        "| cluster | added | removed | changed | source moved | warnings |",
        "|:--|--:|--:|--:|--:|--:|",
    ]
    for c in diff.clusters:
        n = len(c.warnings)
        head_parts.append(
            f"| {_md(c.cluster)}{_md(_status_note(c))} | {len(c.added)} | {len(c.removed)} | "
            f"{len(c.changed)} | {len(c.source_moved)} | {f'**{n}**' if n else 0} |"
        )
    head_parts.append("")
    if base.errors:
        head_parts.append(f"**Note: {_md(base.broken_note)}.** The base's errors:\n")
        head_parts += [_fenced(_side_error_lines(base, LINE_LIMIT), lang=""), ""]
    if diff.warnings:
        head_parts.append("**Prune warnings**\n")
        for cluster, w in diff.warnings:
            head_parts.append(f"- **{_md(cluster)}: {_md(w.message)}**")
        head_parts.append("")
    text = "\n".join(head_parts) + "\n"
    footer = (
        "<sub>Objects whose only change is their `specc.dev/source` (the spec moved to "
        "another file) are counted "
        "as *source moved* and not listed.</sub>\n"
    )
    omitted = 0
    for c in diff.clusters:
        if not c.has_changes:
            continue
        for with_fields in (True, False):
            section = _cluster_md(c, with_fields)
            if len(text) + len(section) + len(footer) + 200 <= limit:
                text += section + "\n"
                break
        else:
            omitted += 1
    if omitted:
        text += (
            f"**{omitted} cluster(s) not shown: the diff is too long for a comment; "
            "see the JSON output (`specc diff --output json`).**\n\n"
        )
    return text + footer


def error_markdown(side: str, message: str, findings: Sequence[str] = ()) -> str:
    """Return a PR comment saying the diff could not be made, with the fleet's errors
    (``path:line:col: error: message`` lines)."""
    what = (
        "The fleet at the head of this change does not render; fix these errors:"
        if side == "head"
        else "No diff: " + message
    )
    lines = [MARKER, "### specc diff", "", f"**{_md(what)}**", ""]
    if findings:
        shown = [abbreviate(f, LINE_LIMIT) for f in findings[:50]]
        if len(findings) > 50:
            shown.append(f"… {len(findings) - 50} more")
        lines += [_fenced(shown, lang=""), ""]
    return "\n".join(lines)
