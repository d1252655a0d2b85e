"""Helpers of the reliability suite: clients, foreign objects, request-log audits, figures.

The audits read the API server double's request log, so they see every write that
reached the server, including writes whose answer the client never got (a timeout).
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from typing import Any

from specc.objects import ClusterRender, DesiredObject, ObjectKey
from specc.sync import Cluster, ClusterOptions
from specc.sync.inventory import (
    GROUP_KINDS,
    ID_LABEL,
    PART_OF,
    ApplySetParent,
    applyset_id,
    labelled_by,
)
from specc.testing import ApiServer

WRITE_VERBS = frozenset({"create", "update", "patch", "apply", "delete", "deletecollection"})
#: An ApplySet of some other tool (or another specc cluster target) in the same cluster.
OTHER_APPLYSET = applyset_id("other-tool", "kube-system")


@dataclass
class Sleeps:
    """A ``sleep`` that records the back-off a client asked for instead of sleeping."""

    total: float = 0.0
    calls: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __call__(self, seconds: float) -> None:
        with self._lock:
            self.total += seconds
            self.calls += 1


def connect(
    api: ApiServer, retries: int = 8, timeout: float = 30.0, sleeps: Sleeps | None = None
) -> Cluster:
    """Return a client of the double that retries like production but does not sleep."""
    options = ClusterOptions(retries=retries, timeout=timeout, backoff=0.2, max_backoff=10.0)
    return Cluster(api.api_client(), options, sleep=sleeps or Sleeps())


def seed_faults(api: ApiServer, seed: int) -> None:
    api.faults.reseed(seed)


# -- objects specc does not own ------------------------------------------------------------


def foreign_objects(namespace: str) -> list[dict[str, Any]]:
    """Return objects another tool owns, some looking much like specc's own."""
    deployment_spec = {
        "selector": {"matchLabels": {"app": "other"}},
        "template": {
            "metadata": {"labels": {"app": "other"}},
            "spec": {"containers": [{"name": "c", "image": "registry.example/other:1"}]},
        },
    }
    return [
        # specc's managed-by label, but no ApplySet membership.
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": "looks-like-ours",
                "namespace": namespace,
                "labels": {"app.kubernetes.io/managed-by": "specc"},
            },
            "data": {"k": "v"},
        },
        # A member of another ApplySet.
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": "other-tool",
                "namespace": namespace,
                "labels": {PART_OF: OTHER_APPLYSET},
            },
            "spec": deployment_spec,
        },
        # A PVC nobody labelled, in a team namespace.
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "handmade", "namespace": namespace},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}},
            },
        },
        # Something in a namespace specc never declares.
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "cluster-settings", "namespace": "kube-system"},
            "data": {"a": "b"},
        },
        # A cluster-scoped object.
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": "someone-elses", "labels": {"team": "other"}},
        },
    ]


def create_foreign(cluster: Cluster, namespace: str) -> dict[ObjectKey, str]:
    """Create the foreign objects (and their namespace); return their resourceVersions."""
    cluster.apply(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
        force=True,
        manager="someone",
    )
    versions = {}
    for body in foreign_objects(namespace):
        live = cluster.apply(body, force=True, manager="someone")
        versions[ObjectKey.of(body)] = str(live["metadata"]["resourceVersion"])
    return versions


def foreign_changes(cluster: Cluster, before: dict[ObjectKey, str]) -> list[str]:
    """Return the foreign objects that are gone or were changed since ``before``."""
    problems = []
    api_versions = {"apps": "apps/v1", "": "v1"}
    for key, version in before.items():
        live = cluster.get(api_versions[key.group], key.kind, key.namespace or None, key.name)
        if live is None:
            problems.append(f"{key} was deleted")
        elif str(live["metadata"]["resourceVersion"]) != version:
            problems.append(f"{key} was changed")
    return problems


# -- request-log audits -------------------------------------------------------------------


Target = tuple[str, str, str]  # (plural, namespace, name)


def target_of(cluster: Cluster, obj: DesiredObject | dict[str, Any]) -> Target:
    body = obj.body if isinstance(obj, DesiredObject) else obj
    res = cluster.resource(str(body["apiVersion"]), str(body["kind"]))
    assert res is not None, body["kind"]
    meta = body["metadata"]
    return (res.plural, str(meta.get("namespace") or "") if res.namespaced else "", meta["name"])


def writes(api: ApiServer, since: int = 0) -> list[tuple[str, Target]]:
    """Return the successful, non-dry-run writes the double served: (verb, target)."""
    out = []
    for r in api.requests[since:]:
        if r.verb in WRITE_VERBS and r.status < 300 and r.query.get("dryRun") != "All":
            out.append((r.verb, (r.resource, r.namespace, r.name)))
    return out


def owned_targets(cluster: Cluster, renders: list[ClusterRender]) -> set[Target]:
    """Return what specc may write for ``renders``: their objects, the parent and its namespace."""
    out = {target_of(cluster, o) for r in renders for o in r.objects}
    for r in renders:
        parent = ApplySetParent.for_cluster(r.cluster)
        out.add(("configmaps", parent.namespace, parent.name))
        out.add(("namespaces", "", parent.namespace))
        out.add(("leases", parent.namespace, f"specc-agent-{r.cluster}"))
    return out


@dataclass
class Audit:
    """What the request log says a run did to objects specc does not own or still declares."""

    foreign_writes: list[tuple[str, Target]]
    #: Deletions of objects the commit declares (wrongful deletions).
    wrongful_deletes: list[Target]
    deletes: int


def audit(
    api: ApiServer,
    cluster: Cluster,
    owned: list[ClusterRender],
    declared: ClusterRender,
    since: int = 0,
) -> Audit:
    """Audit the writes since request ``since``: owned = every render specc synced so far."""
    allowed = owned_targets(cluster, owned)
    still = {target_of(cluster, o) for o in declared.objects}
    done = writes(api, since)
    return Audit(
        foreign_writes=[(v, t) for v, t in done if t not in allowed],
        wrongful_deletes=[t for v, t in done if v == "delete" and t in still],
        deletes=sum(1 for v, _ in done if v == "delete"),
    )


def deleted_targets(api: ApiServer, since: int = 0) -> set[Target]:
    return {t for v, t in writes(api, since) if v == "delete"}


# -- inventory ----------------------------------------------------------------------------


def inventory_problems(cluster: Cluster, render: ClusterRender) -> list[str]:
    """Return how the cluster's ApplySet disagrees with ``render`` (empty when converged).

    Every declared object is live and a member; every live member is declared, or is a
    protected object the sync kept; the parent lists the group-kind of every member.
    """
    parent = ApplySetParent.for_cluster(render.cluster)
    live_parent = cluster.get("v1", "ConfigMap", parent.namespace, parent.name)
    problems: list[str] = []
    if live_parent is None:
        return ["the ApplySet parent is missing"]
    labels = live_parent["metadata"].get("labels") or {}
    if labels.get(ID_LABEL) != parent.id:
        problems.append("the parent does not carry its ApplySet id")
    listed = set(
        ((live_parent["metadata"].get("annotations") or {}).get(GROUP_KINDS) or "").split(",")
    )
    declared = render.by_key()
    for key, obj in declared.items():
        live = cluster.get(obj.api_version, obj.kind, obj.namespace, obj.name)
        if live is None:
            problems.append(f"{key} is declared but not live")
        elif (live["metadata"].get("labels") or {}).get(PART_OF) != parent.id:
            problems.append(f"{key} is live but not a member")
    for member in members(
        cluster, parent, {o.key.group_kind: o.api_version for o in declared.values()}
    ):
        key = ObjectKey.of(member)
        if not labelled_by(member):
            continue  # someone else put our label on it: not a member, never pruned
        if key.group_kind not in listed:
            problems.append(f"member {key}: group-kind not listed by the parent")
        if key not in declared and not _kept(member):
            problems.append(f"member {key} is not declared")
    return problems


def _kept(live: dict[str, Any]) -> bool:
    """Return whether a sync keeps ``live`` although undeclared (a protected kind)."""
    from specc.sync.plan import protected

    return protected(live, ObjectKey.of(live))


def members(
    cluster: Cluster, parent: ApplySetParent, kinds: dict[str, str]
) -> list[dict[str, Any]]:
    """Return every live object labelled as a member of ``parent``, in the kinds given
    (group-kind → apiVersion) and a few more that specc renders."""
    wanted = dict(kinds)
    for gk, av in (
        ("ConfigMap", "v1"),
        ("PersistentVolumeClaim", "v1"),
        ("Namespace", "v1"),
        ("Service", "v1"),
        ("Deployment.apps", "apps/v1"),
        ("StatefulSet.apps", "apps/v1"),
    ):
        wanted.setdefault(gk, av)
    out = []
    for gk, av in sorted(wanted.items()):
        kind = gk.partition(".")[0]
        res = cluster.resource(av, kind)
        if res is not None:
            out += cluster.list(res, f"{PART_OF}={parent.id}")
    return out


# -- figures -------------------------------------------------------------------------------


def record(name: str, **figures: Any) -> None:
    """Print a run's figures; also append them to $SPECC_RELIABILITY_REPORT (JSON lines)."""
    line = json.dumps({"run": name, **figures}, sort_keys=True)
    print(f"RELIABILITY {line}")
    path = os.environ.get("SPECC_RELIABILITY_REPORT")
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(line + "\n")
