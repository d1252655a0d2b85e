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
from specc.objects import FIELD_MANAGER, MANAGED_BY, DesiredObject, ObjectKey
from specc.sync.fields import manager_fields

PART_OF = "applyset.kubernetes.io/part-of"
ID_LABEL = "applyset.kubernetes.io/id"
TOOLING = "applyset.kubernetes.io/tooling"
GROUP_KINDS = "applyset.kubernetes.io/contains-group-kinds"
ADDITIONAL_NAMESPACES = "applyset.kubernetes.io/additional-namespaces"

#: Which fleet and which of its clusters a parent belongs to (the identity guard reads them).
FLEET_LABEL = "specc.dev/fleet"
CLUSTER_LABEL = "specc.dev/cluster"

#: Where parents live; created by the first sync.
PARENT_NAMESPACE = "specc-system"
#: Selects specc's parents (and no other tool's) in PARENT_NAMESPACE.
PARENT_SELECTOR = f"{MANAGED_BY}=specc,{ID_LABEL}"


def applyset_id(name: str, namespace: str, kind: str = "ConfigMap", group: str = "") -> str:
    """Return the ApplySet id of a parent: ``applyset-<base64url(sha256(name.ns.kind.group))>-v1``."""
    digest = hashlib.sha256(f"{name}.{namespace}.{kind}.{group}".encode()).digest()
    return "applyset-" + base64.urlsafe_b64encode(digest).decode().rstrip("=") + "-v1"


@dataclass(frozen=True)
class ApplySetParent:
    """The parent ConfigMap of one cluster target's inventory."""

    name: str
    namespace: str = PARENT_NAMESPACE
    #: The fleet (metadata.name of fleet.yaml) and cluster it records; "" if unknown.
    fleet: str = ""
    cluster: str = ""

    @classmethod
    def for_cluster(
        cls, cluster: str, fleet: str = "", namespace: str = PARENT_NAMESPACE
    ) -> ApplySetParent:
        return cls(f"specc-{cluster}", namespace, fleet=fleet, cluster=cluster)

    @property
    def id(self) -> str:
        return applyset_id(self.name, self.namespace)

    @property
    def key(self) -> ObjectKey:
        return ObjectKey("", "ConfigMap", self.namespace, self.name)

    def labels(self) -> dict[str, str]:
        """Return the parent's labels: its ApplySet id, specc's mark and its identity."""
        out = {ID_LABEL: self.id, MANAGED_BY: "specc"}
        if self.cluster:
            out[CLUSTER_LABEL] = self.cluster
        if self.fleet:
            out[FLEET_LABEL] = self.fleet
        return dict(sorted(out.items()))

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
                "labels": self.labels(),
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


def namespaces_of(parent: dict[str, Any] | None) -> set[str]:
    """Return the namespaces a live parent's members may be in: its own and the additional ones."""
    if not parent:
        return set()
    meta = parent.get("metadata") or {}
    raw = (meta.get("annotations") or {}).get(ADDITIONAL_NAMESPACES, "")
    return {ns for ns in raw.split(",") if ns} | {str(meta.get("namespace") or "")}


def labelled_by(live: dict[str, Any], manager: str = FIELD_MANAGER) -> bool:
    """Return whether ``manager`` applied the part-of label of ``live`` (per managedFields).

    The API server records who set each field; a label someone else copied onto an
    object is theirs, not specc's, and does not make the object specc's to delete.
    """
    fields = manager_fields(live, manager)
    labels = (fields.get("f:metadata") or {}).get("f:labels") or {}
    return f"f:{PART_OF}" in labels


def label_managers(live: dict[str, Any]) -> list[str]:
    """Return the managers that set the part-of label of ``live``, per managedFields."""
    out = []
    for entry in (live.get("metadata") or {}).get("managedFields") or []:
        fields = entry.get("fieldsV1") if isinstance(entry, dict) else None
        labels = ((fields or {}).get("f:metadata") or {}).get("f:labels") or {}
        if f"f:{PART_OF}" in labels:
            out.append(str(entry.get("manager", "")))
    return out
