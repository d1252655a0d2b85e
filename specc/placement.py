"""Placement and overrides: which clusters get an app, and what the app looks like there.

Pure functions over plain data. Overrides are partial specs deep-merged in the order
base → environment → cluster: mappings merge key by key, anything else (lists
included) replaces, and ``null`` removes a key, as in a JSON merge patch (RFC 7396).
"""

from __future__ import annotations

from typing import Any

from specc.load import FieldPath, SourceMap
from specc.spec.base import Placement
from specc.spec.fleet import Cluster


def selects(placement: Placement, cluster: Cluster) -> bool:
    """Return whether ``placement`` puts the app on ``cluster``."""
    if placement.environments is not None and cluster.environment not in placement.environments:
        return False
    if placement.clusters is not None and cluster.name not in placement.clusters:
        return False
    if placement.selector:
        return all(cluster.labels.get(k) == v for k, v in placement.selector.items())
    return True


def deep_merge(base: Any, patch: Any) -> Any:
    """Return ``base`` with ``patch`` merged in (merge-patch semantics); inputs are not changed."""
    if not isinstance(patch, dict) or not isinstance(base, dict):
        return patch
    out = dict(base)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = deep_merge(base.get(key), value)
    return out


def merge_sources(base: SourceMap, patch: SourceMap, at: FieldPath, prefix: FieldPath) -> SourceMap:
    """Return ``base`` with positions from ``patch``'s subtree ``prefix`` placed at ``at``.

    An overridden value then points at the override's line, not the base's.
    """
    out = SourceMap(
        base.path, dict(base.values), dict(base.keys), dict(base.scalars), dict(base.texts)
    )
    n = len(prefix)
    for loc, pos in patch.values.items():
        if loc[:n] == prefix:
            out.values[at + loc[n:]] = pos
            out.scalars.pop(at + loc[n:], None)
            out.texts.pop(at + loc[n:], None)
    for loc, text in patch.texts.items():
        if loc[:n] == prefix:
            out.texts[at + loc[n:]] = text
    for loc, segments in patch.scalars.items():
        if loc[:n] == prefix:
            out.scalars[at + loc[n:]] = segments
    for loc, pos in patch.keys.items():
        if loc[:n] == prefix and len(loc) > n:
            out.keys[at + loc[n:]] = pos
    return out


def override_chain(data: dict[str, Any], cluster: Cluster) -> list[FieldPath]:
    """Return the field paths of the overrides that apply to ``cluster``, in merge order."""
    overrides = data.get("overrides") or {}
    chain: list[FieldPath] = []
    if cluster.environment in (overrides.get("environments") or {}):
        chain.append(("overrides", "environments", cluster.environment))
    if cluster.name in (overrides.get("clusters") or {}):
        chain.append(("overrides", "clusters", cluster.name))
    return chain


def apply_overrides(
    data: dict[str, Any], source: SourceMap, chain: list[FieldPath]
) -> tuple[dict[str, Any], SourceMap]:
    """Return the document with the overrides at ``chain`` merged into its ``spec``."""
    merged = dict(data)
    for path in chain:
        patch: Any = data
        for part in path:
            patch = patch[part]
        merged["spec"] = deep_merge(merged.get("spec") or {}, patch)
        source = merge_sources(source, source, ("spec",), path)
    return merged, source
