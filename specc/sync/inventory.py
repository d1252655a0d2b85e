"""The ApplySet inventory (KEP-3659): one parent object per cluster target, labelled members.

kubectl reads the same inventory: ``kubectl get all -l applyset.kubernetes.io/part-of=<id>``
lists what specc manages, and ``kubectl apply --prune --applyset=configmaps/<name>`` would
recognise the parent.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from specc import __version__
from specc.objects import FIELD_MANAGER, DesiredObject, ObjectKey

PART_OF = "applyset.kubernetes.io/part-of"
ID_LABEL = "applyset.kubernetes.io/id"
TOOLING = "applyset.kubernetes.io/tooling"
GROUP_KINDS = "applyset.kubernetes.io/contains-group-kinds"
ADDITIONAL_NAMESPACES = "applyset.kubernetes.io/additional-namespaces"

#: Where parents live; created by the first sync.
PARENT_NAMESPACE = "specc-system"


def applyset_id(name: str, namespace: str, kind: str = "ConfigMap", group: str = "") -> str:
    """Return the ApplySet id of a parent: ``applyset-<base64url(sha256(name.ns.kind.group))>-v1``."""
    digest = hashlib.sha256(f"{name}.{namespace}.{kind}.{group}".encode()).digest()
    return "applyset-" + base64.urlsafe_b64encode(digest).decode().rstrip("=") + "-v1"


@dataclass(frozen=True)
class ApplySetParent:
    """The parent ConfigMap of one cluster target's inventory."""

    name: str
    namespace: str = PARENT_NAMESPACE

    @classmethod
    def for_cluster(cls, cluster: str) -> ApplySetParent:
        return cls(f"specc-{cluster}")

    @property
    def id(self) -> str:
        return applyset_id(self.name, self.namespace)

    @property
    def key(self) -> ObjectKey:
        return ObjectKey("", "ConfigMap", self.namespace, self.name)

    def body(self, members: Iterable[ObjectKey], status: dict[str, str]) -> dict[str, Any]:
        """Return the parent object listing the group-kinds and namespaces of ``members``."""
        keys = list(members)
        group_kinds = sorted({k.group_kind for k in keys})
        namespaces = sorted(
            {k.namespace for k in keys if k.namespace and k.namespace != self.namespace}
        )
        annotations = {
            GROUP_KINDS: ",".join(group_kinds),
            TOOLING: f"{FIELD_MANAGER}/v{__version__}",
        }
        if namespaces:
            annotations[ADDITIONAL_NAMESPACES] = ",".join(namespaces)
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "labels": {ID_LABEL: self.id, "app.kubernetes.io/managed-by": "specc"},
                "annotations": annotations,
            },
            "data": dict(sorted(status.items())),
        }


def group_kinds_of(parent: dict[str, Any] | None) -> set[str]:
    """Return the group-kinds a live parent says its members have."""
    if not parent:
        return set()
    raw = ((parent.get("metadata") or {}).get("annotations") or {}).get(GROUP_KINDS, "")
    return {gk for gk in raw.split(",") if gk}


def with_membership(
    objects: Iterable[DesiredObject], parent: ApplySetParent
) -> list[DesiredObject]:
    """Return copies of ``objects`` labelled as members of ``parent``'s ApplySet."""
    out = []
    for obj in objects:
        # Only metadata changes; the rest of the body is shared with the input, unchanged.
        meta = dict(obj.body["metadata"])
        meta["labels"] = dict(sorted({**(meta.get("labels") or {}), PART_OF: parent.id}.items()))
        out.append(DesiredObject({**obj.body, "metadata": meta}, obj.source, obj.origin))
    return out
