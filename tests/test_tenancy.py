"""Tenancy: no team gets more than its namespace and what fleet.yaml grants it.

Hostile specs as a malicious team member would write them: built-in kinds redefined by
a CRD, cluster-scoped kinds a hand-kept list missed, CustomResource as a side door,
grants in the team's own file, reserved namespaces; and a render that reaches the sync
past compile, refused before the first request.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from specc.cli import cli
from specc.errors import FleetError, Position
from specc.objects import DesiredObject
from specc.pipeline import render_path
from specc.spec.fleet import SUPPORTED_VERSIONS
from specc.sync import Cluster, ClusterOptions, SyncOptions, sync
from specc.tenancy import Scopes, reserved_group, reserved_namespace
from specc.testing.pytest_plugin import KubeTarget

FLEET = """\
apiVersion: specc.dev/v1alpha1
kind: Fleet
metadata: {name: t}
spec:
  environments: [{name: prod}]
  clusters: [{name: c1, environment: prod, kubernetesVersion: "VERSION"}]
"""


def team(name: str, namespace: str | None = None) -> str:
    spec = f"spec: {{namespace: {namespace}}}\n" if namespace else ""
    return f"apiVersion: specc.dev/v1alpha1\nkind: Team\nmetadata: {{name: {name}}}\n{spec}"


def manifests(objects: str, team: str = "alpha", name: str = "raw") -> str:
    return (
        "apiVersion: specc.dev/v1alpha1\nkind: Manifests\n"
        f"metadata: {{name: {name}, team: {team}}}\nspec:\n  objects:\n"
        + textwrap.indent(textwrap.dedent(objects), "    ")
    )


def fleet(tmp_path: Path, files: dict[str, str], grants: str = "", version: str = "1.33") -> Path:
    root = tmp_path / "fleet"
    base = {
        "fleet.yaml": FLEET.replace("VERSION", version)
        + (f"  grants:\n{grants}" if grants else ""),
        "teams/alpha.yaml": team("alpha"),
        "teams/beta.yaml": team("beta"),
    }
    for rel, text in {**base, **files}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
    return root


def errors(root: Path) -> list[str]:
    with pytest.raises(FleetError) as info:
        render_path(root)
    return [str(f) for f in info.value.findings]


CRB = """\
- apiVersion: rbac.authorization.k8s.io/v1
  kind: ClusterRoleBinding
  metadata: {name: own-the-cluster}
  roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
  subjects: [{kind: Group, name: alpha, apiGroup: rbac.authorization.k8s.io}]
"""


# --- the scope authority -----------------------------------------------------------------


@pytest.mark.parametrize("version", SUPPORTED_VERSIONS)
def test_every_supported_release_has_scopes_from_its_openapi_paths(version: str) -> None:
    scopes = Scopes(version)
    assert scopes.scope("Pod") is True
    assert scopes.scope("ClusterRoleBinding.rbac.authorization.k8s.io") is False
    assert scopes.scope("Namespace") is False
    assert scopes.scope("Deployment.apps") is True


@pytest.mark.parametrize(
    "gk",
    [
        "MutatingAdmissionPolicy.admissionregistration.k8s.io",
        "MutatingAdmissionPolicyBinding.admissionregistration.k8s.io",
        "ServiceCIDR.networking.k8s.io",
        "IPAddress.networking.k8s.io",
        "VolumeAttributesClass.storage.k8s.io",
        "DeviceClass.resource.k8s.io",
        "ClusterTrustBundle.certificates.k8s.io",
        "StorageVersionMigration.storagemigration.k8s.io",
    ],
)
def test_kinds_a_hand_kept_list_missed_are_cluster_scoped_in_every_release(gk: str) -> None:
    # Even releases that do not serve the kind yet: a kind is never taken for namespaced
    # because one release's table lacks it.
    assert all(Scopes(v).scope(gk) is False for v in SUPPORTED_VERSIONS)


def test_a_crd_cannot_change_the_scope_of_a_built_in_kind() -> None:
    crd = {
        "spec": {
            "group": "rbac.authorization.k8s.io",
            "names": {"kind": "ClusterRoleBinding"},
            "scope": "Namespaced",
        }
    }
    assert (
        Scopes.from_crds([crd], "1.33").scope("ClusterRoleBinding.rbac.authorization.k8s.io")
        is False
    )


@pytest.mark.parametrize(
    ("group", "reserved"),
    [
        ("rbac.authorization.k8s.io", True),
        ("apps", True),
        ("", True),
        ("policy", True),
        ("evil.k8s.io", True),
        ("x.kubernetes.io", True),
        ("k8s.io", True),
        ("etcd.database.coreos.com", False),
        ("k8s.io.example.com", False),
    ],
)
def test_reserved_groups(group: str, reserved: bool) -> None:
    assert reserved_group(group) is reserved


# --- the hostile cases -------------------------------------------------------------------


def test_crd_redefining_cluster_role_binding_as_namespaced_is_refused_and_grants_nothing(
    tmp_path: Path,
) -> None:
    crd = textwrap.dedent(
        """\
        apiVersion: apiextensions.k8s.io/v1
        kind: CustomResourceDefinition
        metadata: {name: clusterrolebindings.rbac.authorization.k8s.io}
        spec:
          group: rbac.authorization.k8s.io
          scope: Namespaced
          names: {kind: ClusterRoleBinding, plural: clusterrolebindings}
          versions: [{name: v1, served: true, storage: true}]
        """
    )
    root = fleet(tmp_path, {"crds/crb.yaml": crd, "apps/alpha/raw.yaml": manifests(CRB)})
    found = errors(root)
    assert any(
        e.startswith("crds/crb.yaml:") and "may not define group 'rbac.authorization.k8s.io'" in e
        for e in found
    ), found
    assert any(
        e.startswith("apps/alpha/raw.yaml:6:7: ClusterRoleBinding/own-the-cluster: ")
        and "is cluster-scoped and team 'alpha' is not granted it" in e
        for e in found
    ), found


@pytest.mark.parametrize(
    ("api_version", "kind", "extra"),
    [
        ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicy", {}),
        ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicyBinding", {}),
        ("flowcontrol.apiserver.k8s.io/v1", "FlowSchema", {}),
        ("flowcontrol.apiserver.k8s.io/v1", "PriorityLevelConfiguration", {}),
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", {}),
    ],
)
def test_custom_resource_is_no_side_door_to_cluster_scoped_kinds(
    tmp_path: Path, api_version: str, kind: str, extra: dict[str, str]
) -> None:
    app = (
        "apiVersion: specc.dev/v1alpha1\nkind: CustomResource\n"
        "metadata: {name: deny-all, team: alpha}\n"
        f"spec:\n  apiVersion: {api_version}\n  kind: {kind}\n  spec: {{}}\n"
    )
    root = fleet(tmp_path, {"apps/alpha/cr.yaml": app})
    found = errors(root)
    assert any(
        e.startswith("apps/alpha/cr.yaml:") and "is cluster-scoped and team 'alpha'" in e
        for e in found
    ), found


@pytest.mark.parametrize(
    ("api_version", "kind"),
    [
        ("admissionregistration.k8s.io/v1beta1", "MutatingAdmissionPolicy"),
        ("networking.k8s.io/v1", "ServiceCIDR"),
        ("networking.k8s.io/v1", "IPAddress"),
        ("storage.k8s.io/v1beta1", "VolumeAttributesClass"),
        ("resource.k8s.io/v1beta1", "DeviceClass"),
        ("certificates.k8s.io/v1beta1", "ClusterTrustBundle"),
    ],
)
def test_manifests_of_recent_cluster_scoped_kinds_are_refused_at_their_line(
    tmp_path: Path, api_version: str, kind: str
) -> None:
    obj = f"- apiVersion: {api_version}\n  kind: {kind}\n  metadata: {{name: x}}\n"
    root = fleet(tmp_path, {"apps/alpha/raw.yaml": manifests(obj)}, version="1.33")
    found = errors(root)
    assert any(
        e.startswith(f"apps/alpha/raw.yaml:6:7: {kind}/x: ") and "cluster-scoped" in e
        for e in found
    ), found


def test_a_grant_in_the_teams_own_file_is_an_error_at_its_line(tmp_path: Path) -> None:
    own = team("alpha") + (
        "spec:\n  allowedClusterKinds: [ClusterRoleBinding.rbac.authorization.k8s.io]\n"
    )
    root = fleet(tmp_path, {"teams/alpha.yaml": own})
    found = errors(root)
    assert any(e.startswith("teams/alpha.yaml:5:") and "moved to fleet.yaml" in e for e in found)


def test_a_fleet_grant_lets_only_its_team_declare_the_kind(tmp_path: Path) -> None:
    grants = "    - team: beta\n      kinds: [ClusterRoleBinding.rbac.authorization.k8s.io]\n"
    ok = fleet(tmp_path / "ok", {"apps/beta/raw.yaml": manifests(CRB, team="beta")}, grants)
    (render,) = render_path(ok)[1]
    assert any(o.kind == "ClusterRoleBinding" and o.namespace is None for o in render.objects)
    bad = fleet(tmp_path / "bad", {"apps/alpha/raw.yaml": manifests(CRB)}, grants)
    assert any("team 'alpha' is not granted it" in e for e in errors(bad))


def test_a_grant_naming_no_team_is_an_error_at_its_line(tmp_path: Path) -> None:
    root = fleet(
        tmp_path, {}, "    - team: gamma\n      kinds: [ClusterRole.rbac.authorization.k8s.io]\n"
    )
    assert errors(root) == [
        "fleet.yaml:8:13: spec.grants[0].team: team 'gamma' is not defined in teams/"
    ]


def test_the_agents_namespace_is_nobodys(tmp_path: Path) -> None:
    obj = "- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: inventory, namespace: specc-system}\n"
    root = fleet(tmp_path, {"apps/alpha/raw.yaml": manifests(obj)})
    assert any("specc agent's" in e for e in errors(root))


# --- reserved namespaces -----------------------------------------------------------------


@pytest.mark.parametrize(
    "namespace",
    ["kube-system", "kube-public", "kube-node-lease", "kube-anything", "default", "specc-system"],
)
def test_a_reserved_namespace_cannot_be_a_teams(tmp_path: Path, namespace: str) -> None:
    root = fleet(tmp_path, {"teams/alpha.yaml": team("alpha", namespace)})
    found = errors(root)
    assert len(found) == 1 and found[0].startswith("teams/alpha.yaml:4:19: spec.namespace: "), found
    assert "a team cannot own it" in found[0]


def test_a_team_named_like_a_reserved_namespace_is_refused_at_its_name(tmp_path: Path) -> None:
    root = fleet(tmp_path, {"teams/alpha.yaml": team("default")})
    (found,) = errors(root)
    assert found.startswith("teams/alpha.yaml:3:18: metadata.name: namespace 'default' is reserved")


def test_reserved_namespace_names_the_agents_own() -> None:
    assert reserved_namespace("specc-agent", agent_namespace="specc-agent")
    assert not reserved_namespace("kubernetes")
    assert not reserved_namespace("team-kube-")


# --- the sync's second look --------------------------------------------------------------


def test_a_cluster_admin_binding_forced_past_compile_is_refused_by_the_sync_before_any_request(
    tmp_path: Path, kube: KubeTarget
) -> None:
    root = fleet(tmp_path, {})
    (render,) = render_path(root)[1]
    body = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": "own-the-cluster"},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": "cluster-admin",
        },
        "subjects": [{"kind": "Group", "name": "alpha", "apiGroup": "rbac.authorization.k8s.io"}],
    }
    render.objects.append(
        DesiredObject(body, Position("apps/alpha/raw.yaml", 6, 7), "Manifests/alpha/raw")
    )
    if kube.server is not None:
        kube.server.log.clear()
    cluster = Cluster.connect(ClusterOptions(kubeconfig=str(kube.kubeconfig_path)))
    before = sum(cluster.stats.requests.values())
    served = kube.server.log.count() if kube.server is not None else 0
    result = sync(cluster, render, SyncOptions(parent_namespace=kube.namespace))
    assert sum(cluster.stats.requests.values()) == before
    assert not result.ok
    assert any(
        "ClusterRoleBinding/own-the-cluster" in r and "not granted" in r for r in result.refused
    ), result.refused
    if kube.server is not None:
        assert kube.server.log.count() == served
    assert (
        cluster.get("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", None, "own-the-cluster")
        is None
    )


def test_cluster_admin_from_a_team_fails_validate_and_rbac_grants_nothing_for_it(
    tmp_path: Path,
) -> None:
    root = fleet(tmp_path, {"apps/alpha/raw.yaml": manifests(CRB)})
    runner = CliRunner()
    result = runner.invoke(cli, ["validate", str(root)])
    assert result.exit_code == 1
    assert "apps/alpha/raw.yaml:6:7: error: ClusterRoleBinding/own-the-cluster" in result.output
    result = runner.invoke(cli, ["rbac", str(root), "-o", "json"])
    assert result.exit_code == 1
    assert "clusterrolebindings" not in result.output or "error" in json.loads(result.output)


# --- shared namespaces and namespace policy ------------------------------------------------

ROLE_BINDING = """\
- apiVersion: rbac.authorization.k8s.io/v1
  kind: RoleBinding
  metadata: {name: auth-reader, namespace: kube-system}
  roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: extension-apiserver-authentication-reader}
  subjects: [{kind: ServiceAccount, name: metrics, namespace: alpha}]
"""


def test_a_granted_shared_namespace_takes_objects_and_is_never_created(tmp_path: Path) -> None:
    grants = "    - team: alpha\n      namespaces: [kube-system, monitoring]\n"
    cm = "- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: dash, namespace: monitoring}\n"
    root = fleet(tmp_path, {"apps/alpha/raw.yaml": manifests(ROLE_BINDING + cm)}, grants)
    (render,) = render_path(root)[1]
    refs = {o.ref for o in render.objects}
    assert "RoleBinding/kube-system/auth-reader" in refs
    assert "ConfigMap/monitoring/dash" in refs
    namespaces = {o.name for o in render.objects if o.kind == "Namespace"}
    assert namespaces == {"alpha", "beta"}
    assert render.tenancy is not None and render.tenancy.shared == {"kube-system", "monitoring"}


def test_a_shared_namespace_granted_to_one_team_is_closed_to_another(tmp_path: Path) -> None:
    grants = "    - team: beta\n      namespaces: [kube-system]\n"
    root = fleet(tmp_path, {"apps/alpha/raw.yaml": manifests(ROLE_BINDING)}, grants)
    (found,) = errors(root)
    assert found.startswith("apps/alpha/raw.yaml:6:7: RoleBinding/kube-system/auth-reader: ")
    assert "not granted to team 'alpha'" in found


@pytest.mark.parametrize("name", ["kube-system", "default", "monitoring"])
def test_a_namespace_object_for_a_reserved_or_shared_namespace_is_refused(
    tmp_path: Path, name: str
) -> None:
    grants = "    - team: alpha\n      kinds: [Namespace]\n      namespaces: [monitoring]\n"
    obj = f"- apiVersion: v1\n  kind: Namespace\n  metadata: {{name: {name}}}\n"
    root = fleet(tmp_path, {"apps/alpha/raw.yaml": manifests(obj)}, grants)
    (found,) = errors(root)
    assert f"namespace {name!r} is not specc's to create" in found


@pytest.mark.parametrize(
    ("namespace", "why"),
    [("beta", "it is the own namespace of team 'beta'"), ("specc-system", "specc agent's")],
)
def test_a_teams_or_the_agents_namespace_cannot_be_shared(
    tmp_path: Path, namespace: str, why: str
) -> None:
    root = fleet(tmp_path, {}, f"    - team: alpha\n      namespaces: [{namespace}]\n")
    (found,) = errors(root)
    assert found.startswith("fleet.yaml:9:20: ") and why in found, found


def test_a_reserved_namespace_is_never_pruned_even_with_the_opt_in() -> None:
    from specc.objects import ObjectKey
    from specc.sync.plan import protected

    live = {"metadata": {"name": "kube-system", "annotations": {"specc.dev/prune": "allow"}}}
    assert protected(live, ObjectKey("", "Namespace", "", "kube-system"))
    assert protected(live, ObjectKey("", "Namespace", "", "default"))
    assert not protected(live, ObjectKey("", "Namespace", "", "old-team"))


def _team_with(spec: str) -> str:
    return team("alpha") + "spec:\n" + textwrap.indent(textwrap.dedent(spec), "  ")


def test_team_namespace_labels_and_annotations_are_on_its_namespace(tmp_path: Path) -> None:
    spec = """\
        labels: {pod-security.kubernetes.io/enforce: restricted, app.kubernetes.io/managed-by: me}
        annotations: {scheduler.alpha.kubernetes.io/node-selector: "pool=a"}
    """
    root = fleet(tmp_path, {"teams/alpha.yaml": _team_with(spec)})
    (render,) = render_path(root)[1]
    (ns,) = [o for o in render.objects if o.kind == "Namespace" and o.name == "alpha"]
    meta = ns.body["metadata"]
    assert meta["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert meta["labels"]["app.kubernetes.io/managed-by"] == "specc"  # specc's own wins
    assert meta["annotations"]["scheduler.alpha.kubernetes.io/node-selector"] == "pool=a"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("labels: {specc.dev/team: beta}\n", "is not the team's to set"),
        ("labels: {kubernetes.io/metadata.name: x}\n", "is not the team's to set"),
        ("labels: {pod-security.kubernetes.io/enforce: 'not valid!'}\n", "is not valid"),
        ("annotations: {specc.dev/owners: x}\n", "is specc's own"),
    ],
)
def test_team_namespace_labels_are_checked_at_their_line(
    tmp_path: Path, spec: str, message: str
) -> None:
    root = fleet(tmp_path, {"teams/alpha.yaml": _team_with(spec)})
    (found,) = errors(root)
    assert found.startswith("teams/alpha.yaml:5:") and message in found, found


PRIVILEGED_POD = """\
- apiVersion: v1
  kind: Pod
  metadata: {name: root}
  spec:
    hostPID: true
    containers: [{name: c, image: "busybox:1.36", securityContext: {privileged: true}}]
    volumes: [{name: host, hostPath: {path: /}}]
"""


def test_a_team_cannot_make_its_own_namespace_privileged_without_a_fleet_grant(
    tmp_path: Path,
) -> None:
    # Pods of a privileged namespace can take over their node: a team's own Team file
    # may not open that door, fleet.yaml's grant may.
    files = {
        "teams/alpha.yaml": _team_with(
            "labels: {pod-security.kubernetes.io/enforce: privileged}\n"
        ),
        "apps/alpha/raw.yaml": manifests(PRIVILEGED_POD),
    }
    (found,) = errors(fleet(tmp_path / "a", files))
    assert found.startswith("teams/alpha.yaml:") and "spec.grants[].privileged" in found, found
    granted = fleet(tmp_path / "b", files, grants="    - {team: alpha, privileged: true}\n")
    (render,) = render_path(granted)[1]
    assert any(o.ref == "Pod/alpha/root" for o in render.objects)
    other = fleet(tmp_path / "c", files, grants="    - {team: beta, privileged: true}\n")
    assert any("spec.grants[].privileged" in f for f in errors(other))


@pytest.mark.parametrize(
    "key",
    [
        "specc.dev/team",
        "specc.dev/monitoring-stack",
        "app.kubernetes.io/name",
        "app.kubernetes.io/managed-by",
    ],
)
def test_an_apps_labels_cannot_replace_specc_own(tmp_path: Path, key: str) -> None:
    # specc.dev/team: beta would mark alpha's objects as beta's; app.kubernetes.io/name
    # would leave a Deployment's selector matching none of its own pods (refused on apply).
    app = manifests("- {apiVersion: v1, kind: ConfigMap, metadata: {name: c}}\n").replace(
        "team: alpha}", f"team: alpha, labels: {{{key}: beta}}}}"
    )
    (found,) = errors(fleet(tmp_path, {"apps/alpha/raw.yaml": app}))
    assert found.startswith("apps/alpha/raw.yaml:3:") and "is specc's own" in found, found


def test_default_deny_can_be_turned_off_and_then_no_policy_is_written(tmp_path: Path) -> None:
    root = fleet(tmp_path, {"teams/alpha.yaml": _team_with("network: {defaultDeny: false}\n")})
    (render,) = render_path(root)[1]
    policies = {o.ref for o in render.objects if o.kind == "NetworkPolicy"}
    assert not any(r.startswith("NetworkPolicy/alpha/") for r in policies)
    assert "NetworkPolicy/beta/default-deny" in policies


def test_allow_from_without_default_deny_is_refused(tmp_path: Path) -> None:
    spec = """\
        network:
          defaultDeny: false
          allowFrom: [{name: lb, ipBlock: {cidr: 10.0.0.0/8}}]
    """
    (found,) = errors(fleet(tmp_path, {"teams/alpha.yaml": _team_with(spec)}))
    assert found.startswith("teams/alpha.yaml:6:") and "allowFrom needs defaultDeny" in found


def test_an_ip_block_source_renders_cidr_and_except(tmp_path: Path) -> None:
    spec = """\
        network:
          allowFrom:
            - name: load-balancers
              ipBlock: {cidr: 10.0.0.0/8, except: [10.1.0.0/16]}
              ports: [443]
            - name: webhooks-v6
              ipBlock: {cidr: "fd00::/8"}
    """
    root = fleet(tmp_path, {"teams/alpha.yaml": _team_with(spec)})
    (render,) = render_path(root)[1]
    by_ref = {o.ref: o.body for o in render.objects}
    lb = by_ref["NetworkPolicy/alpha/allow-load-balancers"]["spec"]["ingress"][0]
    assert lb["from"] == [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}]
    v6 = by_ref["NetworkPolicy/alpha/allow-webhooks-v6"]["spec"]["ingress"][0]
    assert v6["from"] == [{"ipBlock": {"cidr": "fd00::/8"}}]


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ("{cidr: 10.0.0.0/33}", "is not a CIDR"),
        ("{cidr: 10.0.0.1}", "add the prefix length"),
        ("{cidr: 10.0.0.1/8}", "has host bits set; the network is 10.0.0.0/8"),
        ("{cidr: 010.0.0.0/8}", "is not a CIDR"),
        ("{cidr: 10.0.0.0/8, except: [192.168.0.0/16]}", "must be a part of cidr"),
        ("{cidr: 10.0.0.0/8, except: [10.0.0.0/8]}", "must be a part of cidr"),
        ("{cidr: 10.0.0.0/8, except: ['fd00::/8']}", "must be a part of cidr"),
        ("{cidr: 10.0.0.0/8, except: [nonsense]}", "is not a CIDR"),
    ],
)
def test_ip_block_cidrs_are_validated_at_their_line(
    tmp_path: Path, block: str, message: str
) -> None:
    spec = f"network:\n  allowFrom: [{{name: x, ipBlock: {block}}}]\n"
    (found,) = errors(fleet(tmp_path, {"teams/alpha.yaml": _team_with(spec)}))
    assert found.startswith("teams/alpha.yaml:6:") and message in found, found


def test_ip_block_with_a_selector_is_refused(tmp_path: Path) -> None:
    spec = "network:\n  allowFrom: [{name: x, ipBlock: {cidr: 10.0.0.0/8}, podSelector: {a: b}}]\n"
    (found,) = errors(fleet(tmp_path, {"teams/alpha.yaml": _team_with(spec)}))
    assert "ipBlock cannot be combined" in found


# --- a commit is judged whole -------------------------------------------------------------


def test_an_error_only_in_another_clusters_render_refuses_the_sync_of_this_one(
    tmp_path: Path,
) -> None:
    two = (
        "apiVersion: specc.dev/v1alpha1\nkind: Fleet\nmetadata: {name: t}\nspec:\n"
        "  environments: [{name: dev}, {name: prod}]\n"
        "  clusters:\n    - {name: c1, environment: dev}\n    - {name: c2, environment: prod}\n"
    )
    broken = manifests(CRB) + "placement: {clusters: [c2]}\n"
    root = fleet(tmp_path, {"fleet.yaml": two, "apps/alpha/raw.yaml": broken})
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\nusers: [{name: u, user: {token: t}}]\n"
    )
    for command in ("sync", "plan"):
        result = CliRunner().invoke(
            cli, [command, str(root), "--cluster", "c1", "--kubeconfig", str(kubeconfig)]
        )
        assert result.exit_code == 1, result.output
        assert "apps/alpha/raw.yaml:6:7: error: ClusterRoleBinding/own-the-cluster" in result.output
        assert "127.0.0.1:1" not in result.output  # refused before connecting


def test_a_team_namespace_that_is_the_agents_chosen_namespace_is_refused_by_the_sync(
    tmp_path: Path,
) -> None:
    from specc.sync.apply import tenancy_refusals

    root = fleet(tmp_path, {"teams/alpha.yaml": team("alpha", "ops")})
    (render,) = render_path(root)[1]
    assert tenancy_refusals(render, "specc-system") == []
    refused = tenancy_refusals(render, "ops")
    assert refused and all("is the specc agent's" in r for r in refused)
    assert any(r.startswith("Namespace/ops: ") for r in refused)


def test_an_object_placed_in_a_namespace_of_a_kind_the_cluster_serves_cluster_scoped_is_refused(
    kube: KubeTarget,
) -> None:
    # What a fleet CRD claiming Namespaced for a cluster-scoped kind would make: the sync
    # trusts the cluster's discovery over the render and writes nothing.
    from specc.objects import ClusterRender

    body = {
        "apiVersion": "scheduling.k8s.io/v1",
        "kind": "PriorityClass",
        "metadata": {"name": "sneaky", "namespace": kube.namespace},
        "value": 1,
    }
    render = ClusterRender(
        "dev", "1.33", [DesiredObject(body, Position("apps/a.yaml", 6, 7), "Manifests/t/a")]
    )
    cluster = Cluster.connect(ClusterOptions(kubeconfig=str(kube.kubeconfig_path)))
    result = sync(cluster, render, SyncOptions(parent_namespace=kube.namespace))
    assert not result.ok
    assert any(
        "serves scheduling.k8s.io/v1 PriorityClass as cluster-scoped" in r for r in result.refused
    )
    assert cluster.get("scheduling.k8s.io/v1", "PriorityClass", None, "sneaky") is None
    assert cluster.stats.requests["patch"] == 0


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ("{cidr: junk}", "is not a CIDR"),
        ("{cidr: 10.0.0.0}", "is not a CIDR"),
        ("{cidr: 10.0.0.0/8, except: [10.0.0.0/8]}", "strict part"),
        ("{cidr: 'fd00::/8', except: [10.0.0.0/16]}", "strict part"),
        ("{cidr: 10.0.0.1/8}", ""),  # host bits: the server still takes them in this field
        ("{cidr: 10.0.0.0/8, except: [10.1.0.0/16]}", ""),
    ],
)
def test_a_manifests_network_policy_ip_block_is_checked_as_the_api_server_does(
    tmp_path: Path, block: str, message: str
) -> None:
    policy = manifests(
        "- apiVersion: networking.k8s.io/v1\n  kind: NetworkPolicy\n  metadata: {name: n}\n"
        f"  spec: {{podSelector: {{}}, ingress: [{{from: [{{ipBlock: {block}}}]}}]}}\n"
    )
    root = fleet(tmp_path, {"apps/alpha/raw.yaml": policy})
    if not message:
        render_path(root)
        return
    (found,) = errors(root)
    assert found.startswith("apps/alpha/raw.yaml:") and message in found, found
