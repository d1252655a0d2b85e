"""Pure plan tests: desired + live → actions in kubectl's words, drift, removals, prune safety."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from specc.errors import Position
from specc.objects import DesiredObject, ObjectKey
from specc.sync.inventory import PART_OF, ApplySetParent, applyset_id, with_membership
from specc.sync.plan import Observed, PlanOptions, plan
from specc.sync.waves import apply_order, wave_of

PARENT = ApplySetParent.for_cluster("dev")


def obj(
    kind: str, name: str, ns: str | None = "shop", api: str = "v1", **body: Any
) -> DesiredObject:
    meta: dict[str, Any] = {"name": name, "labels": {PART_OF: PARENT.id}}
    if ns:
        meta["namespace"] = ns
    return DesiredObject(
        {"apiVersion": api, "kind": kind, "metadata": meta, **body}, Position("apps/x.yaml", 3, 1)
    )


#: What the API server records when specc applied the part-of label: specc's mark.
SPECC_LABELLED = {
    "manager": "specc",
    "operation": "Apply",
    "fieldsV1": {"f:metadata": {"f:labels": {f"f:{PART_OF}": {}}}},
}


def live_of(
    d: DesiredObject, managed: list[dict[str, Any]] | None = None, **extra: Any
) -> dict[str, Any]:
    body = copy.deepcopy(d.body)
    managed = [SPECC_LABELLED] if managed is None else managed
    body["metadata"].update({"uid": "u1", "resourceVersion": "7", "managedFields": managed})
    for k, v in extra.items():
        body[k] = v
    return body


def seen(live: dict[ObjectKey, dict[str, Any]]) -> Observed:
    """Return what observe reads when the server holds ``live`` and their parent."""
    return Observed(parent=PARENT.body(list(live), {}))


def deployment(image: str = "web:1.0", replicas: int | None = 2) -> DesiredObject:
    spec: dict[str, Any] = {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "spec": {
                "containers": [
                    {
                        "name": "web",
                        "image": image,
                        "ports": [{"containerPort": 80, "protocol": "TCP"}],
                    }
                ]
            }
        },
    }
    if replicas is not None:
        spec["replicas"] = replicas
    return obj("Deployment", "web", api="apps/v1", spec=spec)


def test_applyset_id_follows_kep_3659_format() -> None:
    # base64url(sha256("name.namespace.kind.group")) without padding, with the v1 suffix.
    assert applyset_id("specc-dev", "specc-system") == PARENT.id
    assert PARENT.id.startswith("applyset-") and PARENT.id.endswith("-v1")
    assert "=" not in PARENT.id and len(PARENT.id) == len("applyset-") + 43 + len("-v1")


def test_parent_lists_group_kinds_and_other_namespaces() -> None:
    keys = [deployment().key, obj("Namespace", "shop", ns=None).key, obj("Service", "web").key]
    body = PARENT.body(keys, {"lastAppliedCommit": "abc"})
    notes = body["metadata"]["annotations"]
    assert (
        notes["applyset.kubernetes.io/contains-group-kinds"] == "Deployment.apps,Namespace,Service"
    )
    assert notes["applyset.kubernetes.io/additional-namespaces"] == "shop"
    assert body["metadata"]["labels"]["applyset.kubernetes.io/id"] == PARENT.id
    assert body["data"] == {"lastAppliedCommit": "abc"}


def test_membership_label_is_added_without_touching_the_input() -> None:
    d = DesiredObject(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}, Position("a")
    )
    (member,) = with_membership([d], PARENT)
    assert member.body["metadata"]["labels"][PART_OF] == PARENT.id
    assert "labels" not in d.body["metadata"]


def test_missing_object_is_created_and_present_identical_one_is_unchanged() -> None:
    web = deployment()
    svc = obj("Service", "web", spec={"ports": [{"port": 80, "protocol": "TCP"}]})
    p = plan(
        "dev",
        [web, svc],
        {
            svc.key: live_of(
                svc,
                spec={
                    "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}],
                    "clusterIP": "10.0.0.1",
                },
            )
        },
    )
    assert {e.key.kind: e.action for e in p.entries} == {
        "Deployment": "create",
        "Service": "unchanged",
    }
    assert not p.in_sync


def test_server_defaults_in_live_are_not_differences() -> None:
    web = deployment()
    live = live_of(web)
    c = live["spec"]["template"]["spec"]["containers"][0]
    c.update({"imagePullPolicy": "IfNotPresent", "terminationMessagePath": "/dev/termination-log"})
    live["spec"]["strategy"] = {"type": "RollingUpdate"}
    live["status"] = {"replicas": 2}
    assert plan("dev", [web], {web.key: live}).entries[0].action == "unchanged"


def test_changed_field_is_configure_naming_the_manager_that_set_it() -> None:
    web = deployment(image="web:1.0")
    managed = [
        {"manager": "specc", "operation": "Apply", "fieldsV1": {"f:spec": {"f:replicas": {}}}},
        {
            "manager": "kubectl-edit",
            "operation": "Update",
            "time": "2026-11-22T01:00:00Z",
            "fieldsV1": {
                "f:spec": {
                    "f:template": {
                        "f:spec": {"f:containers": {'k:{"name":"web"}': {"f:image": {}}}}
                    }
                }
            },
        },
    ]
    live = live_of(deployment(image="web:hijack"), managed)
    (entry,) = plan("dev", [web], {web.key: live}).entries
    assert entry.action == "configure"
    (change,) = entry.changes
    assert change.path == "spec.template.spec.containers[name=web].image"
    assert (change.live, change.desired, change.manager) == (
        "web:hijack",
        "web:1.0",
        "kubectl-edit",
    )
    assert change.time == "2026-11-22T01:00:00Z"
    assert entry.drift == [change]


def test_a_change_in_git_is_configure_without_drift() -> None:
    managed = [
        {"manager": "specc", "operation": "Apply", "fieldsV1": {"f:spec": {"f:replicas": {}}}}
    ]
    live = live_of(deployment(replicas=2), managed)
    (entry,) = plan("dev", [deployment(replicas=5)], {deployment().key: live}).entries
    assert entry.action == "configure" and not entry.drift
    assert [(c.path, c.live, c.desired) for c in entry.changes] == [("spec.replicas", 2, 5)]


def test_field_specc_applied_before_and_no_longer_declares_is_removed() -> None:
    managed = [
        {
            "manager": "specc",
            "operation": "Apply",
            "fieldsV1": {"f:spec": {"f:replicas": {}, "f:selector": {}}},
        }
    ]
    live = live_of(deployment(replicas=3), managed)
    # The app moved under an autoscaler: the Deployment no longer declares replicas.
    (entry,) = plan("dev", [deployment(replicas=None)], {deployment().key: live}).entries
    assert entry.action == "configure"
    assert [(c.path, c.removed) for c in entry.changes] == [("spec.replicas", True)]


def test_fields_other_managers_own_and_specc_never_set_are_left_alone() -> None:
    managed = [
        {
            "manager": "hpa-controller",
            "operation": "Update",
            "fieldsV1": {"f:spec": {"f:replicas": {}}},
        }
    ]
    live = live_of(deployment(replicas=7), managed)
    (entry,) = plan("dev", [deployment(replicas=None)], {deployment().key: live}).entries
    assert entry.action == "unchanged"


def test_containers_match_by_name_not_position() -> None:
    d = obj("Pod", "p", spec={"containers": [{"name": "b", "image": "b:1"}]})
    live = live_of(
        d, spec={"containers": [{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}]}
    )
    assert plan("dev", [d], {d.key: live}).entries[0].action == "unchanged"


def test_atomic_list_with_an_extra_live_element_differs() -> None:
    d = obj("Pod", "p", spec={"containers": [{"name": "a", "args": ["--x"]}]})
    live = live_of(d, spec={"containers": [{"name": "a", "args": ["--x", "--y"]}]})
    assert plan("dev", [d], {d.key: live}).entries[0].action == "configure"


def test_objects_no_longer_declared_are_pruned_in_reverse_wave_order() -> None:
    keep = [obj("ConfigMap", f"c{i}") for i in range(8)]
    gone = [deployment(), obj("Service", "web")]
    live = {o.key: live_of(o) for o in keep + gone}
    p = plan("dev", keep, live, observed=seen(live))
    prunes = [e.key.kind for e in p.entries if e.action == "prune"]
    assert prunes == ["Deployment", "Service"]  # workloads go before the services they use
    assert not p.refusals


@pytest.mark.parametrize("kind", ["PersistentVolumeClaim", "Namespace"])
def test_protected_kinds_are_skipped_without_opt_in(kind: str) -> None:
    keep = [obj("ConfigMap", f"c{i}") for i in range(8)]
    data = obj(kind, "data-db-0", ns=None if kind == "Namespace" else "shop")
    live = {o.key: live_of(o) for o in [*keep, data]}
    (entry,) = [
        e for e in plan("dev", keep, live, observed=seen(live)).entries if e.key == data.key
    ]
    assert entry.action == "skip" and "protected" in entry.reason


def test_protected_kind_with_opt_in_annotation_is_pruned() -> None:
    keep = [obj("ConfigMap", f"c{i}") for i in range(8)]
    pvc = obj("PersistentVolumeClaim", "scratch")
    pvc.body["metadata"]["annotations"] = {"specc.dev/prune": "allow"}
    live = {o.key: live_of(o) for o in [*keep, pvc]}
    (entry,) = [e for e in plan("dev", keep, live, observed=seen(live)).entries if e.key == pvc.key]
    assert entry.action == "prune"


def test_pruning_over_the_budget_is_refused_with_the_list() -> None:
    objs = [obj("ConfigMap", f"c{i}") for i in range(10)]
    live = {o.key: live_of(o) for o in objs}
    p = plan("dev", objs[:4], live, PlanOptions(prune_budget=0.25), seen(live))
    assert p.refusals and "6 of 10" in p.refusals[0] and "60%" in p.refusals[0]
    assert all(e.action == "skip" for e in p.entries if e.key not in {o.key for o in objs[:4]})
    allowed = plan(
        "dev", objs[:4], live, PlanOptions(prune_budget=0.25, allow_mass_prune=True), seen(live)
    )
    assert not allowed.refusals and len(allowed.by_action("prune")) == 6


def test_an_empty_render_never_empties_a_cluster_even_when_allowed() -> None:
    objs = [obj("ConfigMap", f"c{i}") for i in range(3)]
    live = {o.key: live_of(o) for o in objs}
    p = plan("dev", [], live, PlanOptions(allow_mass_prune=True), seen(live))
    assert p.refusals and not p.by_action("prune")


def test_no_prune_option_leaves_extra_objects() -> None:
    objs = [obj("ConfigMap", f"c{i}") for i in range(3)]
    live = {o.key: live_of(o) for o in objs}
    assert plan("dev", objs[:2], live, PlanOptions(prune=False), seen(live)).in_sync


@pytest.mark.parametrize(
    ("kind", "group", "wave"),
    [
        ("Namespace", "", 0),
        ("CustomResourceDefinition", "apiextensions.k8s.io", 0),
        ("ConfigMap", "", 1),
        ("ClusterRole", "rbac.authorization.k8s.io", 1),
        ("Role", "rbac.authorization.k8s.io", 1),
        # After the roles they refer to: RBAC refuses a binding to a missing role.
        ("ClusterRoleBinding", "rbac.authorization.k8s.io", 2),
        ("RoleBinding", "rbac.authorization.k8s.io", 2),
        ("Service", "", 3),
        ("StatefulSet", "apps", 4),
        ("HorizontalPodAutoscaler", "autoscaling", 5),
        ("NetworkPolicy", "networking.k8s.io", 5),
        ("ValidatingAdmissionPolicy", "admissionregistration.k8s.io", 5),
        ("EtcdCluster", "etcd.database.coreos.com", 6),
    ],
)
def test_waves_put_dependencies_first(kind: str, group: str, wave: int) -> None:
    assert wave_of(ObjectKey(group, kind, "", "x")) == wave


def test_apply_order_groups_and_sorts() -> None:
    keys = [
        ObjectKey("apps", "Deployment", "a", "w"),
        ObjectKey("", "Namespace", "", "a"),
        ObjectKey("", "ConfigMap", "a", "c"),
    ]
    assert [[k.kind for k in w] for w in apply_order(keys) if w] == [
        ["Namespace"],
        ["ConfigMap"],
        ["Deployment"],
    ]
