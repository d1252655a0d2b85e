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

COMPONENT_LABEL = "app.kubernetes.io/component"
#: The component of an app's own pods (members of a StatefulService, replicas of a Service).
SERVER_COMPONENT = "server"
#: The component of a StatefulService's backup Job pods.
BACKUP_COMPONENT = "backup"


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
        """Labels of the app's own pods: the selector's, plus ``component: server``."""
        return self.component_pod_labels(SERVER_COMPONENT)

    def component_pod_labels(self, component: str) -> dict[str, str]:
        """Return the labels of pods that play ``component`` for this app.

        Pods belong to their ReplicaSet/StatefulSet/Job, not to specc's inventory, so they
        carry no managed-by. A component other than the server's gets its own
        ``app.kubernetes.io/name`` (``<app>-<component>``): that is the label every
        selector of the app's server pods matches, and changing those selectors instead
        would be refused on a live Deployment or StatefulSet (spec.selector is immutable).
        """
        labels = {k: v for k, v in self.labels.items() if k != MANAGED_BY}
        if component != SERVER_COMPONENT:
            labels["app.kubernetes.io/name"] = f"{self.name}-{component}"
        labels[COMPONENT_LABEL] = component
        return dict(sorted(labels.items()))


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
