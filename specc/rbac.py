"""The agent's least-privilege RBAC, derived from what the fleet renders.

The agent needs to read, apply and prune exactly the kinds the fleet declares, plus its
own inventory parent and Lease. Deriving the ClusterRole from the render keeps it
minimal as the fleet grows: a test compares the committed copy with this function.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from specc.objects import ClusterRender

#: What applying (server-side apply creates through PATCH), observing and pruning take.
SYNC_VERBS = ["create", "delete", "get", "list", "patch"]


def plural(kind: str) -> str:
    """Return the resource name Kubernetes uses for a built-in ``kind``."""
    lower = kind.lower()
    if lower.endswith("y"):
        return lower[:-1] + "ies"
    if lower.endswith("s"):
        return lower + "es"
    return lower + "s"


def _crd_plurals(crds: Iterable[dict[str, Any]]) -> dict[tuple[str, str], str]:
    out = {}
    for crd in crds:
        spec = crd.get("spec") or {}
        names = spec.get("names") or {}
        if spec.get("group") and names.get("kind") and names.get("plural"):
            out[(spec["group"], names["kind"])] = names["plural"]
    return out


def agent_cluster_role(
    renders: Iterable[ClusterRender], crds: Iterable[dict[str, Any]], name: str = "specc-agent"
) -> dict[str, Any]:
    """Return the ClusterRole the agent needs to sync every cluster of ``renders``."""
    plurals = _crd_plurals(crds)
    resources: dict[str, set[str]] = defaultdict(set)
    bind_roles: set[str] = set()
    for render in renders:
        for obj in render.objects:
            group, kind = obj.key.group, obj.kind
            resources[group].add(plurals.get((group, kind), plural(kind)))
            if kind == "RoleBinding" and obj.body.get("roleRef", {}).get("kind") == "ClusterRole":
                bind_roles.add(str(obj.body["roleRef"]["name"]))
    # Its own inventory parent (ConfigMap) and namespace.
    resources[""].update({"configmaps", "namespaces"})
    rules: list[dict[str, Any]] = [
        {"apiGroups": [group], "resources": sorted(res), "verbs": list(SYNC_VERBS)}
        for group, res in sorted(resources.items())
    ]
    rules.append(
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "verbs": ["create", "get", "update"],
        }
    )
    if bind_roles:
        # RoleBindings to built-in ClusterRoles need `bind` on those roles, and only those.
        rules.append(
            {
                "apiGroups": ["rbac.authorization.k8s.io"],
                "resources": ["clusterroles"],
                "resourceNames": sorted(bind_roles),
                "verbs": ["bind"],
            }
        )
    # A (Cluster)Role granting what the agent itself lacks (e.g. an operator's access to
    # pods) needs `escalate` on that resource; nothing else gets it.
    escalate = sorted({"roles", "clusterroles"} & resources.get("rbac.authorization.k8s.io", set()))
    if escalate:
        rules.append(
            {
                "apiGroups": ["rbac.authorization.k8s.io"],
                "resources": escalate,
                "verbs": ["escalate"],
            }
        )
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": name},
        "rules": rules,
    }
