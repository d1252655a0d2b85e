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
    bind = [r for r in rules if r["verbs"] == ["bind"]]  # type: ignore[index]
    assert bind and all(r["resourceNames"] == ["admin", "edit", "view"] for r in bind)


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
