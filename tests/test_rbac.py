"""The agent's RBAC is least privilege: exactly what syncing the fleet takes."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from specc.cli import cli
from specc.compile import fleet_crds
from specc.pipeline import render_path
from specc.rbac import agent_cluster_role, plural
from specc.validate import ValidFleet

ROOT = Path(__file__).resolve().parent.parent


def committed_role(valid: ValidFleet) -> dict[str, object]:
    (app,) = [a for a in valid.apps if a.model.metadata.name == "specc-agent-rbac"]
    (role,) = [o for o in app.model.spec.objects if o["kind"] == "ClusterRole"]  # type: ignore[union-attr]
    return role


def test_the_fleets_agent_cluster_role_is_the_derived_one() -> None:
    valid, renders = render_path(ROOT / "fleet")
    assert committed_role(valid) == agent_cluster_role(renders, fleet_crds(valid))


def test_the_agent_cluster_role_grants_no_wildcards_secrets_or_pods() -> None:
    valid, renders = render_path(ROOT / "fleet")
    rules = agent_cluster_role(renders, fleet_crds(valid))["rules"]
    granted = {(g, r) for rule in rules for g in rule["apiGroups"] for r in rule["resources"]}  # type: ignore[index]
    assert not any("*" in g or "*" in r for g, r in granted)
    assert ("", "secrets") not in granted and ("", "pods") not in granted
    for rule in rules:  # type: ignore[attr-defined]
        assert "*" not in rule["verbs"] and "deletecollection" not in rule["verbs"]
    bind = {r["resources"][0]: r["resourceNames"] for r in rules if r["verbs"] == ["bind"]}  # type: ignore[index]
    assert bind == {"clusterroles": ["admin", "edit", "view"], "roles": ["monitoring-prometheus"]}


def test_roles_and_bindings_are_written_only_by_name_and_escalate_never_covers_itself() -> None:
    valid, renders = render_path(ROOT / "fleet")
    rules = agent_cluster_role(renders, fleet_crds(valid))["rules"]
    rbac = [r for r in rules if r["apiGroups"] == ["rbac.authorization.k8s.io"]]  # type: ignore[index]
    for rule in rbac:
        if set(rule["verbs"]) & {"create", "patch", "update", "escalate", "bind"}:
            assert rule["resourceNames"], rule
    (escalate,) = [r for r in rbac if r["verbs"] == ["escalate"]]
    assert escalate["resources"] == ["roles"]
    assert escalate["resourceNames"] == ["etcd-operator", "monitoring-prometheus"]
    assert not any(
        "specc-agent" in r.get("resourceNames", []) and "escalate" in r["verbs"] for r in rbac
    )


def test_namespaces_and_crds_are_not_deleted_without_the_prune_opt_in(fleet: Path) -> None:
    valid, renders = render_path(fleet)
    rules = agent_cluster_role(renders, fleet_crds(valid))["rules"]

    def verbs(resource: str) -> list[str]:
        (rule,) = [r for r in rules if resource in r["resources"] and "create" in r["verbs"]]  # type: ignore[index]
        return list(rule["verbs"])

    assert "delete" not in verbs("namespaces")
    assert "delete" not in verbs("customresourcedefinitions")
    assert "delete" in verbs("deployments")
    crd = fleet / "crds/etcdclusters.etcd.database.coreos.com.yaml"
    text = crd.read_text()
    assert "\nmetadata:\n  name: etcdclusters.etcd.database.coreos.com\n" in text
    crd.write_text(
        text.replace(
            "\nmetadata:\n  name: etcdclusters.etcd.database.coreos.com\n",
            "\nmetadata:\n  name: etcdclusters.etcd.database.coreos.com\n"
            "  annotations: {specc.dev/prune: allow}\n",
        )
    )
    valid, renders = render_path(fleet)
    rules = agent_cluster_role(renders, fleet_crds(valid))["rules"]
    assert "delete" in verbs("customresourcedefinitions")


def test_a_cluster_without_monitoring_gets_no_monitoring_grants() -> None:
    """The MonitoringStack is placed on staging and prod: dev's role has no grant for it."""

    def groups(role: dict[str, object]) -> set[str]:
        return {g for r in role["rules"] for g in r["apiGroups"]}  # type: ignore[attr-defined]

    valid, renders = render_path(ROOT / "fleet")
    assert "monitoring.coreos.com" in groups(agent_cluster_role(renders, fleet_crds(valid)))
    (dev,) = [r for r in renders if r.cluster == "dev"]
    assert "monitoring.coreos.com" not in groups(agent_cluster_role([dev], fleet_crds(valid)))
    result = CliRunner().invoke(cli, ["rbac", str(ROOT / "fleet"), "--cluster", "dev"])
    assert result.exit_code == 0, result.output
    assert (
        "monitoring.coreos.com" not in result.output and "etcd.database.coreos.com" in result.output
    )


def test_every_rendered_kind_is_covered_by_the_role() -> None:
    valid, renders = render_path(ROOT / "fleet")
    rules = agent_cluster_role(renders, fleet_crds(valid))["rules"]
    granted = {
        (g, r)
        for rule in rules
        if "patch" in rule["verbs"]
        for g in rule["apiGroups"]
        for r in rule["resources"]  # type: ignore[index]
    }
    crd_plural = {"EtcdCluster": "etcdclusters", "Prometheus": "prometheuses"}
    for render in renders:
        for obj in render.objects:
            assert (obj.key.group, crd_plural.get(obj.kind, plural(obj.kind))) in granted, obj.ref


def test_rbac_command_prints_the_role() -> None:
    result = CliRunner().invoke(cli, ["rbac", str(ROOT / "fleet")])
    assert result.exit_code == 0, result.output
    assert "kind: ClusterRole" in result.output and "name: specc-agent" in result.output


def test_plural_of_builtin_kinds() -> None:
    assert [plural(k) for k in ("NetworkPolicy", "Ingress", "ConfigMap", "Service")] == [
        "networkpolicies",
        "ingresses",
        "configmaps",
        "services",
    ]


def test_a_recreatable_statefulset_grants_the_claim_expansion_it_may_write(fleet: Path) -> None:
    def granted(rules: list[dict[str, object]]) -> set[tuple[str, str]]:
        return {
            (str(resource), str(verb))
            for r in rules
            for resource in r["resources"]  # type: ignore[attr-defined]
            for verb in r["verbs"]  # type: ignore[attr-defined]
            if resource in ("persistentvolumeclaims", "storageclasses")
        }

    valid, renders = render_path(fleet)
    before = granted(agent_cluster_role(renders, fleet_crds(valid))["rules"])  # type: ignore[arg-type]
    assert ("persistentvolumeclaims", "patch") not in before
    path = fleet / "apps/payments/ledger-db.yaml"
    path.write_text(path.read_text().replace("  podManagementPolicy: OrderedReady\n", "  podManagementPolicy: OrderedReady\n  allowRecreate: true\n"))  # fmt: skip
    valid, renders = render_path(fleet)
    after = granted(agent_cluster_role(renders, fleet_crds(valid))["rules"])  # type: ignore[arg-type]
    assert (
        after - before
        == {
            ("persistentvolumeclaims", "list"),
            ("persistentvolumeclaims", "patch"),
            ("storageclasses", "get"),
        }
        - before
    )
    assert ("storageclasses", "get") in after and ("persistentvolumeclaims", "patch") in after
