"""The agent's least-privilege RBAC, derived from what the fleet renders.

The agent needs to read, apply and prune exactly the kinds the fleet declares, plus its
own inventory parent and Lease. Deriving the ClusterRole from the render keeps it
minimal as the fleet grows: a test compares the committed copy with this function, and
the real tier runs sync, plan, status and the agent as a ServiceAccount bound to it
(every request allowed; without any one rule, some request is refused).

RBAC objects are what could turn the agent's token into more than the fleet: with
``patch`` and ``escalate`` on every ClusterRole it could rewrite its own role to
``*/*/*``. So for roles and bindings the write verbs are limited to the names the fleet
renders (server-side apply authorizes even a create by name); ``escalate`` is granted
only for the rendered roles that grant what the agent itself does not hold, and never
for the agent's own role; ``bind`` only for the roles bindings refer to that the agent
does not hold. ``delete`` and ``list`` stay unnamed: pruning removes objects the commit
no longer names, and deleting a role grants nothing. Namespaces, CRDs and volumes are
never pruned without the ``specc.dev/prune: allow`` opt-in, so ``delete`` on them is
granted only when a rendered object carries it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from specc.objects import PRUNE_ANNOTATION, RECREATE_ANNOTATION, ClusterRender, DesiredObject

#: What applying (server-side apply creates through PATCH), observing and pruning take;
#: ``watch`` because the agent watches every group-kind of its inventory to heal drift.
SYNC_VERBS = ["create", "delete", "get", "list", "patch", "watch"]
RBAC_GROUP = "rbac.authorization.k8s.io"
RBAC_RESOURCES = {
    "ClusterRole": "clusterroles",
    "ClusterRoleBinding": "clusterrolebindings",
    "Role": "roles",
    "RoleBinding": "rolebindings",
}
#: Kinds the sync deletes only with the prune opt-in (``specc.sync.plan.PROTECTED_KINDS``).
PROTECTED = frozenset(
    {
        ("", "Namespace"),
        ("", "PersistentVolume"),
        ("", "PersistentVolumeClaim"),
        ("apiextensions.k8s.io", "CustomResourceDefinition"),
    }
)
#: Where the agent keeps its inventory parent and its Lease.
AGENT_NAMESPACE = "specc-system"


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


def _opted_in(obj: DesiredObject) -> bool:
    notes = (obj.body.get("metadata") or {}).get("annotations") or {}
    return notes.get(PRUNE_ANNOTATION) == "allow"


def _grouped(verbs: dict[tuple[str, str], set[str]]) -> list[dict[str, Any]]:
    """Return one rule per (group, verb set), resources sorted, groups in order."""
    rules: dict[tuple[str, tuple[str, ...]], set[str]] = defaultdict(set)
    for (group, resource), granted in verbs.items():
        rules[(group, tuple(sorted(granted)))].add(resource)
    return [
        {"apiGroups": [group], "resources": sorted(resources), "verbs": list(granted)}
        for (group, granted), resources in sorted(rules.items())
    ]


def covers(rules: list[dict[str, Any]], wanted: dict[str, Any]) -> bool:
    """Return whether ``rules`` allow everything the RBAC rule ``wanted`` allows.

    What RBAC's escalation check asks of a role's author. Deliberately simple: a
    wildcard or a non-resource URL in ``wanted`` is never covered (the agent holds none).
    """
    if wanted.get("nonResourceURLs"):
        return False
    names = set(wanted.get("resourceNames") or [])
    for group in wanted.get("apiGroups") or []:
        for resource in wanted.get("resources") or []:
            for verb in wanted.get("verbs") or []:
                if "*" in (group, resource, verb):
                    return False
                if not any(
                    group in rule.get("apiGroups", [])
                    and resource in rule.get("resources", [])
                    and verb in rule.get("verbs", [])
                    and (
                        not rule.get("resourceNames")
                        or (names and names <= set(rule["resourceNames"]))
                    )
                    for rule in rules
                ):
                    return False
    return True


def agent_cluster_role(
    renders: Iterable[ClusterRender], crds: Iterable[dict[str, Any]], name: str = "specc-agent"
) -> dict[str, Any]:
    """Return the ClusterRole the agent needs to sync every cluster of ``renders``.

    Pass one cluster's render for that cluster's role (``specc rbac --cluster``): a
    cluster without, say, the monitoring kinds gets no grant for them.
    """
    plurals = _crd_plurals(crds)
    verbs: dict[tuple[str, str], set[str]] = defaultdict(set)
    rbac_objects: list[DesiredObject] = []
    for render in renders:
        for obj in render.objects:
            group, kind = obj.key.group, obj.kind
            if group == RBAC_GROUP and kind in RBAC_RESOURCES:
                rbac_objects.append(obj)
                continue
            granted = set(SYNC_VERBS)
            if (group, kind) in PROTECTED and not _opted_in(obj):
                granted.discard("delete")
            verbs[(group, plurals.get((group, kind), plural(kind)))] |= granted
            if (group, kind) == ("apps", "StatefulSet") and _recreatable(obj):
                # A re-creation writes a storage increase to the claims the StatefulSet
                # controller made, where their StorageClass allows expansion.
                verbs[("", "persistentvolumeclaims")] |= {"list", "patch"}
                verbs[("storage.k8s.io", "storageclasses")] |= {"get"}
    # Its own inventory parent (a ConfigMap) in its own namespace, made on first sync.
    verbs[("", "configmaps")] |= set(SYNC_VERBS)
    verbs[("", "namespaces")] |= set(SYNC_VERBS) - {"delete"}
    rules = _grouped(verbs)
    rules.extend(_rbac_rules(rbac_objects))
    rules.append(
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "verbs": ["create", "get", "update"],
        }
    )
    rules.extend(_bind_and_escalate(rbac_objects, rules, name))
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": name},
        "rules": rules,
    }


def _recreatable(obj: DesiredObject) -> bool:
    notes = (obj.body.get("metadata") or {}).get("annotations") or {}
    return bool(notes.get(RECREATE_ANNOTATION) == "allow")


def _rbac_rules(objects: list[DesiredObject]) -> list[dict[str, Any]]:
    """Return the rules for roles and bindings: writes by name; list, watch, delete unnamed."""
    names: dict[str, set[str]] = defaultdict(set)
    for obj in objects:
        names[RBAC_RESOURCES[obj.kind]].add(obj.key.name)
    if not names:
        return []
    rules: list[dict[str, Any]] = [
        {
            "apiGroups": [RBAC_GROUP],
            "resources": sorted(names),
            "verbs": ["delete", "list", "watch"],
        }
    ]
    for resource in sorted(names):
        rules.append(
            {
                "apiGroups": [RBAC_GROUP],
                "resources": [resource],
                "resourceNames": sorted(names[resource]),
                "verbs": ["create", "get", "patch"],
            }
        )
    return rules


def _bind_and_escalate(
    objects: list[DesiredObject], held: list[dict[str, Any]], own: str
) -> list[dict[str, Any]]:
    """Return ``bind`` and ``escalate`` rules, each limited to the roles that need it."""
    rendered_rules = {
        (obj.kind, obj.key.name): list(obj.body.get("rules") or [])
        for obj in objects
        if obj.kind in ("Role", "ClusterRole")
    }

    def held_fully(kind: str, role: str) -> bool:
        if (kind, role) == ("ClusterRole", own):
            return True  # the agent holds its own role, whatever it says
        found = rendered_rules.get((kind, role))
        return found is not None and all(covers(held, rule) for rule in found)

    bind: dict[str, set[str]] = defaultdict(set)
    for obj in objects:
        ref = obj.body.get("roleRef") or {}
        kind, role = str(ref.get("kind", "")), str(ref.get("name", ""))
        if kind in ("Role", "ClusterRole") and role and not held_fully(kind, role):
            bind[RBAC_RESOURCES[kind]].add(role)
    escalate: dict[str, set[str]] = defaultdict(set)
    for (kind, role), _ in sorted(rendered_rules.items()):
        # Never its own role: the agent cannot grow what it may do, only an admin can.
        if role != own and not held_fully(kind, role):
            escalate[RBAC_RESOURCES[kind]].add(role)
    rules = []
    for verb, wanted in (("bind", bind), ("escalate", escalate)):
        for resource in sorted(wanted):
            rules.append(
                {
                    "apiGroups": [RBAC_GROUP],
                    "resources": [resource],
                    "resourceNames": sorted(wanted[resource]),
                    "verbs": [verb],
                }
            )
    return rules
