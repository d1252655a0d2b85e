"""Metadata every rendered object carries, and the helpers that build objects with it."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from specc.errors import Position
from specc.objects import (
    MANAGED_BY,
    SOURCE_ANNOTATION,
    TEAM_LABEL,
    DesiredObject,
    source_annotation,
)


@dataclass(frozen=True)
class AppContext:
    """What every renderer of one app on one cluster needs to know."""

    name: str
    team: str
    namespace: str
    origin: str
    extra_labels: tuple[tuple[str, str], ...] = ()

    @property
    def selector(self) -> dict[str, str]:
        """Labels that select this app's pods; immutable once a workload exists."""
        return {"app.kubernetes.io/name": self.name}

    @property
    def labels(self) -> dict[str, str]:
        base = {
            "app.kubernetes.io/instance": self.name,
            MANAGED_BY: "specc",
            "app.kubernetes.io/name": self.name,
            "app.kubernetes.io/part-of": self.team,
            TEAM_LABEL: self.team,
            **dict(self.extra_labels),
        }
        return dict(sorted(base.items()))

    @property
    def pod_labels(self) -> dict[str, str]:
        # Pods belong to their ReplicaSet/StatefulSet, not to specc's inventory.
        return {k: v for k, v in self.labels.items() if k != MANAGED_BY}


def metadata(
    name: str,
    namespace: str | None,
    labels: dict[str, str],
    source: Position,
    annotations: dict[str, str] | None = None,
    origin: str = "",
) -> dict[str, Any]:
    """Return ``metadata`` in the conventional key order, with the source annotation
    (the spec file and ``origin``, the app)."""
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    meta["labels"] = dict(sorted(labels.items()))
    notes = {**(annotations or {}), SOURCE_ANNOTATION: source_annotation(source.path, origin)}
    meta["annotations"] = dict(sorted(notes.items()))
    return meta


def make(
    ctx: AppContext,
    api_version: str,
    kind: str,
    name: str,
    source: Position,
    body: dict[str, Any],
    *,
    namespaced: bool = True,
    annotations: dict[str, str] | None = None,
) -> DesiredObject:
    """Return a desired object of ``kind`` with specc's metadata and ``body`` after it."""
    obj: dict[str, Any] = {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": metadata(
            name, ctx.namespace if namespaced else None, ctx.labels, source, annotations, ctx.origin
        ),
    }
    obj.update(body)
    return DesiredObject(obj, source, ctx.origin)


def content_hash(data: Any, length: int = 10) -> str:
    """Return a short stable hash of ``data`` for names that must change with content."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]
