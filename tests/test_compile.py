"""Compile stage: what each spec kind becomes, on which cluster, with which fields."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from specc.errors import CompileError, ValidationError
from specc.objects import ClusterRender
from tests.render_helpers import (
    EXAMPLE_FLEET,
    body,
    compile_path,
    copy_example_fleet,
    differences,
    find,
    write_fleet,
)


@pytest.fixture(scope="module")
def example() -> dict[str, ClusterRender]:
    return compile_path(EXAMPLE_FLEET)


# --- metadata on every object ------------------------------------------------------------


def test_every_object_carries_the_standard_labels_and_team_label(
    example: dict[str, ClusterRender],
) -> None:
    for render in example.values():
        for obj in render.objects:
            labels = obj.body["metadata"]["labels"]
            assert labels["app.kubernetes.io/managed-by"] == "specc", obj.ref
            for key in ("name", "instance", "part-of"):
                assert labels[f"app.kubernetes.io/{key}"], (obj.ref, key)
            assert labels["specc.dev/team"] == labels["app.kubernetes.io/part-of"], obj.ref
    web = body(example["prod-eu"], "Deployment", "web")["metadata"]["labels"]
    assert web == {
        "app.kubernetes.io/instance": "web",
        "app.kubernetes.io/managed-by": "specc",
        "app.kubernetes.io/name": "web",
        "app.kubernetes.io/part-of": "storefront",
        "specc.dev/team": "storefront",
    }


def test_every_object_names_the_spec_file_and_app_and_knows_its_line(
    example: dict[str, ClusterRender],
) -> None:
    for render in example.values():
        for obj in render.objects:
            note = obj.body["metadata"]["annotations"]["specc.dev/source"]
            m = re.fullmatch(r"(\S+\.yaml)#(\w+/[\w.-]+(?:/[\w.-]+)?)", note)
            assert m, (obj.ref, note)
            assert (m.group(1), m.group(2)) == (obj.source.path, obj.origin)
            lines = (EXAMPLE_FLEET / obj.source.path).read_text().splitlines()
            assert 1 <= obj.source.line <= len(lines), (obj.ref, obj.source)
    # The HPA of web on prod-eu comes from the cluster override, not from the base.
    hpa = find(example["prod-eu"], "HorizontalPodAutoscaler", "web")
    text = (EXAMPLE_FLEET / hpa.source.path).read_text().splitlines()[hpa.source.line - 1]
    assert "minReplicas: 4" in text


def test_pod_labels_leave_out_managed_by(example: dict[str, ClusterRender]) -> None:
    tpl = body(example["dev"], "Deployment", "web")["spec"]["template"]
    assert "app.kubernetes.io/managed-by" not in tpl["metadata"]["labels"]
    assert tpl["metadata"]["labels"]["app.kubernetes.io/name"] == "web"


# --- Service (stateless) -----------------------------------------------------------------


def test_deployment_mounts_and_refers_to_the_configmap_named_with_its_content_hash(
    example: dict[str, ClusterRender],
) -> None:
    render = example["prod-eu"]
    cms = [o for o in render.objects if o.kind == "ConfigMap" and o.name.startswith("web-")]
    assert len(cms) == 1
    cm = cms[0].body
    assert re.fullmatch(r"web-config-[0-9a-f]{10}", cm["metadata"]["name"])
    assert cm["immutable"] is True
    assert sorted(cm["data"]) == ["CACHE_TTL_SECONDS", "default.conf", "features.json"]
    assert cm["data"]["default.conf"] == (EXAMPLE_FLEET / "config/web/nginx.conf").read_text()
    pod = body(render, "Deployment", "web")["spec"]["template"]["spec"]
    assert pod["volumes"][0]["configMap"]["name"] == cm["metadata"]["name"]
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    assert env["CACHE_TTL_SECONDS"]["valueFrom"]["configMapKeyRef"] == {
        "key": "CACHE_TTL_SECONDS",
        "name": cm["metadata"]["name"],
    }
    assert env["SESSION_SIGNING_KEY"]["valueFrom"]["secretKeyRef"] == {
        "key": "signing-key",
        "name": "web-session",
    }


def test_a_config_change_changes_the_configmap_name_and_the_deployment_reference(
    tmp_path: Path,
) -> None:
    root = copy_example_fleet(tmp_path / "fleet")
    before = compile_path(root, ["dev"])["dev"]
    conf = root / "config/web/nginx.conf"
    conf.write_text(conf.read_text() + "# changed\n")
    after = compile_path(root, ["dev"])["dev"]

    def cm_name(render: ClusterRender) -> str:
        (cm,) = [o for o in render.objects if o.kind == "ConfigMap" and o.name.startswith("web-")]
        return cm.name

    assert cm_name(before) != cm_name(after)
    pod = body(after, "Deployment", "web")["spec"]["template"]["spec"]
    assert pod["volumes"][0]["configMap"]["name"] == cm_name(after)
    # Nothing else about the app changes.
    changed = differences(body(before, "Deployment", "web"), body(after, "Deployment", "web"))
    assert changed == {
        "spec.template.spec.volumes[0].configMap.name",
        "spec.template.spec.containers[0].env[2].valueFrom.configMapKeyRef.name",
    }


def test_autoscaled_deployment_carries_no_replicas_and_the_hpa_holds_the_bounds(
    example: dict[str, ClusterRender],
) -> None:
    for cluster, lo, hi in (("dev", 1, 2), ("staging", 2, 10), ("prod-eu", 4, 30)):
        render = example[cluster]
        assert "replicas" not in body(render, "Deployment", "web")["spec"], cluster
        hpa = body(render, "HorizontalPodAutoscaler", "web")
        assert hpa["apiVersion"] == "autoscaling/v2"
        assert hpa["spec"]["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": "web",
        }
        assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (lo, hi), cluster
        # The override names only the bounds; the target stays the base's.
        target = hpa["spec"]["metrics"][0]["resource"]["target"]
        assert target == {"type": "Utilization", "averageUtilization": 70}


def test_service_ports_carry_protocol_tcp_and_target_the_container_port_by_name(
    example: dict[str, ClusterRender],
) -> None:
    render = example["prod-eu"]
    svc = body(render, "Service", "web")["spec"]
    assert svc["ports"] == [
        {"name": "http", "port": 80, "protocol": "TCP", "targetPort": "http"},
        {"name": "metrics", "port": 9090, "protocol": "TCP", "targetPort": "metrics"},
    ]
    assert svc["type"] == "ClusterIP"  # owned, so a hand-made NodePort shows as drift
    container = body(render, "Deployment", "web")["spec"]["template"]["spec"]["containers"][0]
    # targetPort given → the container listens there; not given → on the service port.
    assert container["ports"] == [
        {"containerPort": 8080, "name": "http", "protocol": "TCP"},
        {"containerPort": 9090, "name": "metrics", "protocol": "TCP"},
    ]


def test_quantities_are_rendered_in_the_canonical_form(
    example: dict[str, ClusterRender], tmp_path: Path
) -> None:
    container = body(example["dev"], "Deployment", "web")["spec"]["template"]["spec"]["containers"][
        0
    ]
    assert container["resources"] == {
        "limits": {"cpu": "1", "memory": "512Mi"},
        "requests": {"cpu": "250m", "memory": "256Mi"},  # written as cpu: 0.25
    }
    root = write_fleet(
        tmp_path,
        {
            "apps/q.yaml": """\
            apiVersion: specc.dev/v1alpha1
            kind: StatefulService
            metadata: {name: q, team: team-a}
            spec:
              image: x/q:1
              members: 1
              resources:
                requests: {cpu: 0.5, memory: 1024Mi, ephemeral-storage: 2048Mi}
                limits: {cpu: 1000m, memory: 1.5Gi}
              storage: {size: 1024Mi}
            """,
            "teams/team-a.yaml": """\
            apiVersion: specc.dev/v1alpha1
            kind: Team
            metadata: {name: team-a}
            spec:
              quota: {cpu: 2000m, memory: 1024Mi, storage: 1.5Ti}
              limits:
                default: {cpu: 0.1, memory: 0.5Gi}
            """,
        },
    )
    render = compile_path(root, ["dev"])["dev"]
    sts = body(render, "StatefulSet", "q")["spec"]
    assert sts["template"]["spec"]["containers"][0]["resources"] == {
        "limits": {"cpu": "1", "memory": "1536Mi"},
        "requests": {"cpu": "500m", "ephemeral-storage": "2Gi", "memory": "1Gi"},
    }
    claim = sts["volumeClaimTemplates"][0]["spec"]
    assert claim["resources"] == {"requests": {"storage": "1Gi"}}
    assert body(render, "ResourceQuota", "team-quota")["spec"]["hard"] == {
        "requests.cpu": "2",
        "requests.memory": "1Gi",
        "requests.storage": "1536Gi",
    }
    assert body(render, "LimitRange", "team-limits")["spec"]["limits"] == [
        {"default": {"cpu": "100m", "memory": "512Mi"}, "type": "Container"}
    ]


def test_ingress_routes_the_host_to_the_first_port(example: dict[str, ClusterRender]) -> None:
    ing = body(example["staging"], "Ingress", "web")["spec"]
    assert ing["ingressClassName"] == "nginx"
    (rule,) = ing["rules"]
    assert rule["host"] == "shop.staging.acme.example"
    assert rule["http"]["paths"][0]["backend"] == {
        "service": {"name": "web", "port": {"name": "http"}}
    }
    # The staging override gives a new ingress mapping; tlsSecret stays from the base.
    assert ing["tls"] == [{"hosts": ["shop.staging.acme.example"], "secretName": "shop-tls"}]


def test_pdb_and_zone_spread_of_a_stateless_service(example: dict[str, ClusterRender]) -> None:
    render = example["prod-eu"]
    pdb = body(render, "PodDisruptionBudget", "web")["spec"]
    assert pdb == {
        "minAvailable": 1,
        "selector": {"matchLabels": {"app.kubernetes.io/name": "web"}},
    }
    spread = body(render, "Deployment", "web")["spec"]["template"]["spec"][
        "topologySpreadConstraints"
    ]
    assert spread[0]["topologyKey"] == "topology.kubernetes.io/zone"


def test_probes_without_a_port_use_the_first_port_name_and_ports_without_target_port_listen_on_the_port(
    tmp_path: Path,
) -> None:
    root = write_fleet(
        tmp_path,
        {
            "apps/p.yaml": """\
            apiVersion: specc.dev/v1alpha1
            kind: Service
            metadata: {name: p, team: team-a}
            spec:
              image: x/p:1
              ports:
                - {name: grpc, port: 9000}
                - {name: admin, port: 9001, protocol: UDP}
              probes:
                readiness: {path: /ready}
                liveness: {}
                startup: {command: [/bin/true]}
            """,
        },
    )
    render = compile_path(root, ["dev"])["dev"]
    c = body(render, "Deployment", "p")["spec"]["template"]["spec"]["containers"][0]
    assert c["readinessProbe"] == {"httpGet": {"path": "/ready", "port": "grpc"}}
    assert c["livenessProbe"] == {"tcpSocket": {"port": "grpc"}}
    assert c["startupProbe"] == {"exec": {"command": ["/bin/true"]}}
    assert c["ports"] == [
        {"containerPort": 9000, "name": "grpc", "protocol": "TCP"},
        {"containerPort": 9001, "name": "admin", "protocol": "UDP"},
    ]
    assert body(render, "Service", "p")["spec"]["ports"][0] == {
        "name": "grpc",
        "port": 9000,
        "protocol": "TCP",
        "targetPort": "grpc",
    }


def test_a_probe_with_no_port_to_use_is_refused_at_its_line(tmp_path: Path) -> None:
    root = write_fleet(
        tmp_path,
        {
            "apps/p.yaml": """\
            apiVersion: specc.dev/v1alpha1
            kind: Service
            metadata: {name: p, team: team-a}
            spec:
              image: x/p:1
              probes:
                readiness:
                  path: /ready
            """,
        },
    )
    with pytest.raises(CompileError) as info:
        compile_path(root)
    (f,) = info.value.findings
    assert (f.position.path, f.position.line) == ("apps/p.yaml", 8)
    assert "needs a port" in f.message


def test_an_exposure_without_ports_is_refused(tmp_path: Path) -> None:
    root = write_fleet(
        tmp_path,
        {
            "apps/p.yaml": """\
            apiVersion: specc.dev/v1alpha1
            kind: Service
            metadata: {name: p, team: team-a}
            spec:
              image: x/p:1
              expose:
                ingress: {host: p.example}
            """,
        },
    )
    with pytest.raises(CompileError, match=r"apps/p\.yaml:6:3: expose needs a port"):
        compile_path(root)


def test_a_service_without_ports_gets_a_deployment_and_no_service(tmp_path: Path) -> None:
    root = write_fleet(
        tmp_path,
        {
            "apps/w.yaml": """\
            apiVersion: specc.dev/v1alpha1
            kind: Service
            metadata: {name: worker, team: team-a}
            spec:
              image: x/worker:1
            """,
        },
    )
    render = compile_path(root, ["dev"])["dev"]
    kinds = sorted(o.kind for o in render.objects if o.origin.startswith("Service/"))
    assert kinds == ["Deployment"]
    c = body(render, "Deployment", "worker")["spec"]["template"]["spec"]["containers"][0]
    assert c == {"image": "x/worker:1", "name": "worker", "securityContext": RESTRICTED_CONTAINER}


#: What every container gets by default: Pod Security "restricted".
RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "readOnlyRootFilesystem": False,
}
RESTRICTED_POD = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}


def test_every_rendered_pod_meets_restricted_by_default(example: dict[str, ClusterRender]) -> None:
    """Seen: no rendered pod had a securityContext; the agent's own Deployment included."""
    templates = 0
    for render in example.values():
        for obj in render.objects:
            spec = obj.body.get("spec", {})
            tpl = spec.get("template") or spec.get("jobTemplate", {}).get("spec", {}).get(
                "template"
            )
            if obj.kind not in ("Deployment", "StatefulSet", "CronJob") or tpl is None:
                continue
            templates += 1
            pod = tpl["spec"]
            assert pod["securityContext"]["runAsNonRoot"] is True, obj.ref
            assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
            for c in pod["containers"]:
                sc = c["securityContext"]
                assert sc["allowPrivilegeEscalation"] is False, obj.ref
                assert sc["capabilities"]["drop"] == ["ALL"], obj.ref
    assert templates >= 10
    agent = body(example["prod-eu"], "Deployment", "specc-agent")["spec"]["template"]["spec"]
    assert agent["securityContext"]["runAsNonRoot"] is True


def test_security_fields_and_scratch_volumes_render(tmp_path: Path) -> None:
    root = write_fleet(
        tmp_path,
        {
            "apps/w.yaml": """\
            apiVersion: specc.dev/v1alpha1
            kind: Service
            metadata: {name: web, team: team-a}
            spec:
              image: x/web:1
              ports: [{name: http, port: 80}]
              security:
                runAsUser: 101
                runAsGroup: 101
                fsGroup: 101
                readOnlyRootFilesystem: true
                addCapabilities: [NET_BIND_SERVICE]
              volumes:
                - {name: tmp, mountPath: /tmp}
                - {name: cache, mountPath: /var/cache/nginx, emptyDir: {medium: Memory, sizeLimit: 64Mi}}
            """,
        },
    )
    pod = body(compile_path(root, ["dev"])["dev"], "Deployment", "web")["spec"]["template"]["spec"]
    assert pod["securityContext"] == {
        "fsGroup": 101,
        "runAsGroup": 101,
        "runAsNonRoot": True,
        "runAsUser": 101,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    (c,) = pod["containers"]
    assert c["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]},
        "readOnlyRootFilesystem": True,
    }
    assert c["volumeMounts"] == [
        {"mountPath": "/tmp", "name": "tmp"},
        {"mountPath": "/var/cache/nginx", "name": "cache"},
    ]
    assert pod["volumes"] == [
        {"emptyDir": {}, "name": "tmp"},
        {"emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}, "name": "cache"},
    ]


# --- environment defaults and placement --------------------------------------------------


def test_environment_default_replicas_apply_only_when_the_app_sets_none(tmp_path: Path) -> None:
    root = write_fleet(
        tmp_path,
        {
            "apps/a.yaml": """\
            apiVersion: specc.dev/v1alpha1
            kind: Service
            metadata: {name: unset, team: team-a}
            spec: {image: x/a:1}
            ---
            apiVersion: specc.dev/v1alpha1
            kind: Service
            metadata: {name: set, team: team-a}
            spec: {image: x/a:1, replicas: 2}
            ---
            apiVersion: specc.dev/v1alpha1
            kind: Service
            metadata: {name: zero, team: team-a}
            spec: {image: x/a:1, replicas: 0}
            ---
            apiVersion: specc.dev/v1alpha1
            kind: Service
            metadata: {name: scaled, team: team-a}
            spec:
              image: x/a:1
              autoscaling: {minReplicas: 2, maxReplicas: 4}
            """,
        },
    )
    renders = compile_path(root)

    def replicas(cluster: str, name: str) -> int | None:
        spec = body(renders[cluster], "Deployment", name)["spec"]
        return spec.get("replicas")

    # dev has no default: 1; prod defaults to 3.
    assert [replicas("dev", n) for n in ("unset", "set", "zero", "scaled")] == [1, 2, 0, None]
    assert [replicas("prod-a", n) for n in ("unset", "set", "zero", "scaled")] == [3, 2, 0, None]


def test_environment_default_resources_apply_only_when_the_app_sets_none(tmp_path: Path) -> None:
    fleet = """\
    apiVersion: specc.dev/v1alpha1
    kind: Fleet
    metadata: {name: small}
    spec:
      environments:
        - name: dev
          defaults:
            resources: {requests: {cpu: 0.1, memory: 64Mi}}
      clusters: [{name: dev, environment: dev}]
    """
    root = write_fleet(
        tmp_path,
        {
            "fleet.yaml": fleet,
            "apps/a.yaml": """\
            apiVersion: specc.dev/v1alpha1
            kind: Service
            metadata: {name: plain, team: team-a}
            spec: {image: x/a:1}
            ---
            apiVersion: specc.dev/v1alpha1
            kind: Service
            metadata: {name: own, team: team-a}
            spec:
              image: x/a:1
              resources: {limits: {memory: 1Gi}}
            """,
        },
    )
    render = compile_path(root)["dev"]

    def res(name: str) -> object:
        return body(render, "Deployment", name)["spec"]["template"]["spec"]["containers"][0][
            "resources"
        ]

    assert res("plain") == {"requests": {"cpu": "100m", "memory": "64Mi"}}
    assert res("own") == {"limits": {"memory": "1Gi"}}


def test_placement_puts_catalog_only_on_staging_and_prod(
    example: dict[str, ClusterRender],
) -> None:
    def has_catalog(render: ClusterRender) -> bool:
        return any(o.name == "catalog" for o in render.objects)

    assert {c: has_catalog(r) for c, r in example.items()} == {
        "dev": False,
        "staging": True,
        "prod-eu": True,
    }
    assert body(example["staging"], "Deployment", "catalog")["spec"]["replicas"] == 2
    assert body(example["prod-eu"], "Deployment", "catalog")["spec"]["replicas"] == 3


def test_placement_by_cluster_label_selector(tmp_path: Path) -> None:
    root = write_fleet(
        tmp_path,
        {
            "apps/a.yaml": """\
            apiVersion: specc.dev/v1alpha1
            kind: Service
            metadata: {name: regional, team: team-a}
            spec: {image: x/a:1}
            placement:
              selector: {region: b}
            """,
        },
    )
    renders = compile_path(root)
    assert [c for c, r in renders.items() if any(o.name == "regional" for o in r.objects)] == [
        "prod-b"
    ]


def test_an_override_changes_only_what_it_names(tmp_path: Path) -> None:
    """Two clusters of one environment: only the cluster-overridden fields differ."""
    root = write_fleet(
        tmp_path,
        {
            "apps/web.yaml": """\
            apiVersion: specc.dev/v1alpha1
            kind: Service
            metadata: {name: web, team: team-a}
            spec:
              image: x/web:1
              ports: [{name: http, port: 8080}]
              env: {A: "1", B: "2"}
              autoscaling: {minReplicas: 2, maxReplicas: 10, targetCPUUtilization: 60}
              resources:
                requests: {cpu: 100m, memory: 128Mi}
                limits: {memory: 256Mi}
              disruptionBudget: {maxUnavailable: 1}
            overrides:
              environments:
                prod:
                  env: {B: "prod"}
              clusters:
                prod-b:
                  autoscaling: {maxReplicas: 40}
                  resources:
                    limits: {memory: 512Mi}
            """,
        },
    )
    renders = compile_path(root)
    a, b = renders["prod-a"].by_key(), renders["prod-b"].by_key()
    assert a.keys() == b.keys()
    changed = {
        (str(k), path)
        for k in a
        for path in differences(a[k].body, b[k].body)
        if path != "metadata.annotations.specc.dev/source"
    }
    assert changed == {
        ("HorizontalPodAutoscaler/team-a/web", "spec.maxReplicas"),
        (
            "Deployment/team-a/web",
            "spec.template.spec.containers[0].resources.limits.memory",
        ),
    }
    # The environment override applies to both prod clusters and to no other.
    for cluster, value in (("dev", "2"), ("prod-a", "prod"), ("prod-b", "prod")):
        env = body(renders[cluster], "Deployment", "web")["spec"]["template"]["spec"]["containers"][
            0
        ]["env"]
        assert env == [{"name": "A", "value": "1"}, {"name": "B", "value": value}], cluster


def test_a_null_override_removes_the_field(example: dict[str, ClusterRender]) -> None:
    """ledger-db's dev override sets backup: null, so dev has no backup CronJob."""
    assert not [o for o in example["dev"].objects if o.kind == "CronJob"]
    assert [o.name for o in example["prod-eu"].objects if o.kind == "CronJob"] == [
        "ledger-db-backup"
    ]


# --- StatefulService ---------------------------------------------------------------------


def test_statefulset_has_ordinal_members_headless_service_and_hard_anti_affinity(
    example: dict[str, ClusterRender],
) -> None:
    render = example["prod-eu"]
    sts = body(render, "StatefulSet", "ledger-db")["spec"]
    assert sts["replicas"] == 3
    assert sts["podManagementPolicy"] == "OrderedReady"
    assert sts["serviceName"] == "ledger-db-headless"
    headless = body(render, "Service", "ledger-db-headless")["spec"]
    assert headless["clusterIP"] == "None"
    assert headless["publishNotReadyAddresses"] is True
    assert headless["selector"] == sts["selector"]["matchLabels"]
    client = body(render, "Service", "ledger-db")["spec"]
    assert "clusterIP" not in client
    assert client["ports"] == [
        {"name": "postgres", "port": 5432, "protocol": "TCP", "targetPort": "postgres"}
    ]
    (term,) = sts["template"]["spec"]["affinity"]["podAntiAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ]
    assert term == {
        "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "ledger-db"}},
        "topologyKey": "kubernetes.io/hostname",
    }
    assert sts["template"]["spec"]["tolerations"] == [
        {"effect": "NoSchedule", "key": "dedicated", "operator": "Equal", "value": "databases"}
    ]


def test_anti_affinity_is_preferred_by_default_and_required_where_the_environment_says(
    example: dict[str, ClusterRender],
) -> None:
    """Seen: required hostname anti-affinity always, so 3 members never fit one dev node."""
    for cluster, mode in (("dev", "preferred"), ("staging", "preferred"), ("prod-eu", "required")):
        for kind, name in (("StatefulSet", "ledger-db"), ("Deployment", "specc-agent")):
            aff = body(example[cluster], kind, name)["spec"]["template"]["spec"]["affinity"]
            (key,) = aff["podAntiAffinity"]
            assert key.startswith(mode), (cluster, kind, key)
    dev = body(example["dev"], "StatefulSet", "ledger-db")["spec"]["template"]["spec"]
    assert dev["affinity"]["podAntiAffinity"][
        "preferredDuringSchedulingIgnoredDuringExecution"
    ] == [
        {
            "podAffinityTerm": {
                "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "ledger-db"}},
                "topologyKey": "kubernetes.io/hostname",
            },
            "weight": 100,
        }
    ]


def test_anti_affinity_none_and_zone_spread_on_a_stateful_service(tmp_path: Path) -> None:
    root = write_fleet(
        tmp_path,
        {
            "apps/s.yaml": """\
            apiVersion: specc.dev/v1alpha1
            kind: StatefulService
            metadata: {name: s, team: team-a}
            spec:
              image: x/s:1
              members: 3
              storage: {size: 1Gi}
              antiAffinity: none
              zoneSpread: true
            overrides:
              environments:
                prod: {antiAffinity: required}
            """,
        },
    )
    renders = compile_path(root)
    dev = body(renders["dev"], "StatefulSet", "s")["spec"]["template"]["spec"]
    assert "affinity" not in dev
    assert dev["topologySpreadConstraints"] == [
        {
            "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "s"}},
            "maxSkew": 1,
            "topologyKey": "topology.kubernetes.io/zone",
            "whenUnsatisfiable": "ScheduleAnyway",
        }
    ]
    prod = body(renders["prod-a"], "StatefulSet", "s")["spec"]["template"]["spec"]
    assert list(prod["affinity"]["podAntiAffinity"]) == [
        "requiredDuringSchedulingIgnoredDuringExecution"
    ]


def test_statefulset_pdb_allows_one_member_down(example: dict[str, ClusterRender]) -> None:
    for render in example.values():
        pdb = body(render, "PodDisruptionBudget", "ledger-db")["spec"]
        assert pdb == {
            "maxUnavailable": 1,
            "selector": {"matchLabels": {"app.kubernetes.io/name": "ledger-db"}},
        }


def test_statefulset_claim_templates_retention_and_partition(
    example: dict[str, ClusterRender],
) -> None:
    prod = body(example["prod-eu"], "StatefulSet", "ledger-db")["spec"]
    (claim,) = prod["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "data"
    assert "annotations" not in claim["metadata"]  # no prune opt-in
    assert claim["spec"] == {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "50Gi"}},
        "storageClassName": "fast-ssd",
        "volumeMode": "Filesystem",
    }
    assert prod["persistentVolumeClaimRetentionPolicy"] == {
        "whenDeleted": "Retain",
        "whenScaled": "Retain",
    }
    container = prod["template"]["spec"]["containers"][0]
    assert container["volumeMounts"][0] == {"mountPath": "/var/lib/postgresql/data", "name": "data"}
    # Canary on prod-eu only.
    assert prod["updateStrategy"] == {"rollingUpdate": {"partition": 2}, "type": "RollingUpdate"}
    staging = body(example["staging"], "StatefulSet", "ledger-db")["spec"]
    assert staging["updateStrategy"]["rollingUpdate"]["partition"] == 0
    dev = body(example["dev"], "StatefulSet", "ledger-db")["spec"]
    assert dev["replicas"] == 1
    assert dev["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "5Gi"


def test_backup_becomes_a_cronjob_with_the_secret_env_and_no_overlap(
    example: dict[str, ClusterRender],
) -> None:
    cron = body(example["prod-eu"], "CronJob", "ledger-db-backup")
    assert cron["apiVersion"] == "batch/v1"
    spec = cron["spec"]
    assert spec["schedule"] == "30 2 * * *"
    assert spec["concurrencyPolicy"] == "Forbid"
    assert spec["suspend"] is False
    pod = spec["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "OnFailure"
    (c,) = pod["containers"]
    assert c["image"] == "ghcr.io/acme/pg-backup:1.3.0"
    assert c["command"] == ["/usr/local/bin/backup", "--to=s3://acme-backups/ledger"]
    assert {"name": "POSTGRES_PASSWORD", "valueFrom": {"secretKeyRef": {"key": "password", "name": "ledger-db-superuser"}}} in c["env"]  # fmt: skip
    # Its own resources and env, not the database's 1 CPU / 2Gi.
    assert c["resources"] == {"limits": {"memory": "256Mi"}, "requests": {"cpu": "100m", "memory": "256Mi"}}  # fmt: skip
    assert {"name": "BACKUP_RETENTION_DAYS", "value": "14"} in c["env"]


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def test_nothing_of_the_database_selects_the_backup_pods(
    example: dict[str, ClusterRender],
) -> None:
    """Seen: backup pods carried the members' labels, so both Services routed to them,
    the PDB counted them and the required anti-affinity kept them Pending."""
    render = example["prod-eu"]
    cron = body(render, "CronJob", "ledger-db-backup")
    backup_pod = cron["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
    assert backup_pod["app.kubernetes.io/component"] == "backup"
    assert backup_pod["app.kubernetes.io/name"] == "ledger-db-backup"
    assert cron["metadata"]["labels"]["app.kubernetes.io/component"] == "backup"
    sts = body(render, "StatefulSet", "ledger-db")["spec"]
    member_pod = sts["template"]["metadata"]["labels"]
    assert member_pod["app.kubernetes.io/component"] == "server"
    affinity = sts["template"]["spec"]["affinity"]["podAntiAffinity"]
    terms = [t.get("podAffinityTerm", t) for ts in affinity.values() for t in ts]
    selectors = [
        sts["selector"]["matchLabels"],
        body(render, "PodDisruptionBudget", "ledger-db")["spec"]["selector"]["matchLabels"],
        body(render, "Service", "ledger-db")["spec"]["selector"],
        body(render, "Service", "ledger-db-headless")["spec"]["selector"],
        *(t["labelSelector"]["matchLabels"] for t in terms),
    ]
    for sel in selectors:
        assert _selects(sel, member_pod), sel
        assert not _selects(sel, backup_pod), sel


def test_backup_env_can_leave_the_database_env_out(tmp_path: Path) -> None:
    root = write_fleet(
        tmp_path,
        {
            "apps/s.yaml": """\
            apiVersion: specc.dev/v1alpha1
            kind: StatefulService
            metadata: {name: s, team: team-a}
            spec:
              image: x/s:1
              members: 1
              storage: {size: 1Gi}
              env: {A: "1"}
              secrets: [{secret: db, key: pw, env: PW}]
              backup:
                schedule: "0 3 * * *"
                image: x/b:1
                command: [/b]
                inheritEnv: false
                env: {TARGET: s3://x}
                secrets: [{secret: s3, mountPath: /creds}]
            """,
        },
    )
    cron = body(compile_path(root, ["dev"])["dev"], "CronJob", "s-backup")
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert c["env"] == [{"name": "TARGET", "value": "s3://x"}]
    assert c["volumeMounts"] == [{"mountPath": "/creds", "name": "secret-0", "readOnly": True}]
    assert pod["volumes"] == [{"name": "secret-0", "secret": {"secretName": "s3"}}]


def test_stateful_service_without_ports_gets_a_portless_headless_service_only(
    tmp_path: Path,
) -> None:
    root = write_fleet(
        tmp_path,
        {
            "apps/s.yaml": """\
            apiVersion: specc.dev/v1alpha1
            kind: StatefulService
            metadata: {name: s, team: team-a}
            spec:
              image: x/s:1
              members: 2
              storage: {size: 1Gi, whenDeleted: Delete}
              pruneData: true
            """,
        },
    )
    render = compile_path(root, ["dev"])["dev"]
    services = [o for o in render.objects if o.kind == "Service"]
    assert [o.name for o in services] == ["s-headless"]
    assert services[0].body["spec"] == {
        "clusterIP": "None",
        "publishNotReadyAddresses": True,
        "selector": {"app.kubernetes.io/name": "s"},
    }
    sts = body(render, "StatefulSet", "s")["spec"]
    assert sts["serviceName"] == "s-headless"
    assert sts["persistentVolumeClaimRetentionPolicy"]["whenDeleted"] == "Delete"
    claim = sts["volumeClaimTemplates"][0]["metadata"]
    assert claim["annotations"] == {"specc.dev/prune": "allow"}


# --- Team --------------------------------------------------------------------------------


def test_team_namespace_carries_owners(example: dict[str, ClusterRender]) -> None:
    ns = body(example["dev"], "Namespace", "storefront")
    assert "namespace" not in ns["metadata"]
    assert ns["metadata"]["annotations"]["specc.dev/owners"] == "ana@acme.example, li@acme.example"


def test_team_network_policy_denies_by_default_and_allows_named_sources(
    example: dict[str, ClusterRender],
) -> None:
    render = example["prod-eu"]
    denies = [o.namespace for o in render.objects if o.name == "default-deny"]
    assert denies == ["payments", "platform", "storefront"]
    policies = {
        o.name: o.body["spec"]
        for o in render.objects
        if o.kind == "NetworkPolicy" and o.namespace == "storefront"
    }
    assert sorted(policies) == [
        "allow-ingress",
        "allow-monitoring",
        "allow-same-namespace",
        "default-deny",
    ]
    assert policies["default-deny"] == {"podSelector": {}, "policyTypes": ["Ingress"]}
    assert policies["allow-ingress"]["ingress"] == [
        {
            "from": [
                {
                    "namespaceSelector": {
                        "matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}
                    }
                }
            ],
            "ports": [{"port": 8080, "protocol": "TCP"}],
        }
    ]
    assert policies["allow-same-namespace"]["ingress"] == [{"from": [{"podSelector": {}}]}]
    payments = body_in(render, "NetworkPolicy", "payments", "allow-storefront")["spec"]
    (peer,) = payments["ingress"][0]["from"]
    assert peer == {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "storefront"}},
        "podSelector": {"matchLabels": {"app.kubernetes.io/part-of": "storefront"}},
    }
    everyone = body_in(render, "NetworkPolicy", "platform", "allow-everyone")["spec"]
    assert everyone["ingress"] == [{"from": [{"namespaceSelector": {}}]}]


def body_in(render: ClusterRender, kind: str, namespace: str, name: str) -> dict[str, object]:
    (hit,) = [
        o.body
        for o in render.objects
        if o.kind == kind and o.namespace == namespace and o.name == name
    ]
    return hit


def test_team_quota_limit_range_and_role_bindings(example: dict[str, ClusterRender]) -> None:
    render = example["dev"]
    quota = body_in(render, "ResourceQuota", "storefront", "team-quota")["spec"]
    assert quota == {
        "hard": {
            "limits.cpu": "40",
            "limits.memory": "128Gi",
            "pods": "200",
            "requests.cpu": "20",
            "requests.memory": "64Gi",
        }
    }
    limits = body_in(render, "LimitRange", "storefront", "team-limits")["spec"]
    assert limits == {
        "limits": [
            {
                "default": {"cpu": "500m", "memory": "512Mi"},
                "defaultRequest": {"cpu": "100m", "memory": "128Mi"},
                "type": "Container",
            }
        ]
    }
    bindings = {
        o.name: o.body
        for o in render.objects
        if o.kind == "RoleBinding" and o.namespace == "storefront"
    }
    assert sorted(bindings) == ["edit-storefront-devs", "view-support"]
    edit = bindings["edit-storefront-devs"]
    assert edit["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "edit",
    }
    assert edit["subjects"] == [
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "storefront-devs"}
    ]


def test_a_team_with_no_quota_or_limits_gets_namespace_policies_and_bindings_only(
    tmp_path: Path,
) -> None:
    root = write_fleet(
        tmp_path,
        {
            "teams/team-a.yaml": """\
            apiVersion: specc.dev/v1alpha1
            kind: Team
            metadata: {name: team-a}
            spec:
              namespace: alpha
              network: {allowSameNamespace: false}
              access:
                - {role: view, user: Jane.Doe@example.com}
                - {role: edit, serviceAccount: ci/deployer}
            """,
        },
    )
    render = compile_path(root, ["dev"])["dev"]
    assert sorted(o.ref for o in render.objects) == [
        "Namespace/alpha",
        "NetworkPolicy/alpha/default-deny",
        "RoleBinding/alpha/edit-deployer",
        "RoleBinding/alpha/view-jane-doe-example-com",
    ]
    sa = body(render, "RoleBinding", "edit-deployer")["subjects"]
    assert sa == [{"kind": "ServiceAccount", "name": "deployer", "namespace": "ci"}]


# --- CustomResource and Manifests --------------------------------------------------------


def test_custom_resource_is_placed_in_the_team_namespace_with_its_overrides(
    example: dict[str, ClusterRender],
) -> None:
    dev = body(example["dev"], "EtcdCluster", "session-store")
    assert dev["apiVersion"] == "etcd.database.coreos.com/v1beta2"
    assert dev["metadata"]["namespace"] == "payments"
    assert dev["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "specc"
    assert dev["spec"]["size"] == 1
    assert dev["spec"]["version"] == "3.5.15"  # the override names only size
    assert body(example["prod-eu"], "EtcdCluster", "session-store")["spec"]["size"] == 3


def test_manifests_are_labelled_namespaced_and_cluster_kinds_kept_cluster_scoped(
    example: dict[str, ClusterRender],
) -> None:
    render = example["dev"]
    sa = find(render, "ServiceAccount", "etcd-operator")
    assert sa.namespace == "platform"
    assert sa.body["metadata"]["labels"]["app.kubernetes.io/part-of"] == "platform"
    assert sa.body["metadata"]["annotations"]["specc.dev/source"] == (
        "apps/platform/etcd-operator.yaml#Manifests/platform/etcd-operator"
    )
    assert (sa.source.path, sa.source.line) == ("apps/platform/etcd-operator.yaml", 12)
    crd = find(render, "CustomResourceDefinition", "etcdclusters.etcd.database.coreos.com")
    assert crd.namespace is None
    assert crd.source.path == "crds/etcdclusters.etcd.database.coreos.com.yaml"


def _manifests(objects: str) -> dict[str, str]:
    """Return a Manifests app of team-a holding ``objects`` (a YAML list, any indent)."""
    head = (
        "apiVersion: specc.dev/v1alpha1\n"
        "kind: Manifests\n"
        "metadata: {name: m, team: team-a}\n"
        "spec:\n"
        "  objects:\n"
    )
    return {"apps/m.yaml": head + textwrap.indent(textwrap.dedent(objects), "    ")}


def test_a_manifest_in_another_teams_namespace_is_refused_with_its_line_and_object(
    tmp_path: Path,
) -> None:
    root = write_fleet(
        tmp_path,
        _manifests(
            """\
            - apiVersion: v1
              kind: ConfigMap
              metadata: {name: sneaky, namespace: kube-system}
              data: {a: b}
        """
        ),
    )
    with pytest.raises(CompileError) as info:
        compile_path(root)
    (f,) = info.value.findings
    assert str(f).startswith(
        "apps/m.yaml:6:7: ConfigMap/kube-system/sneaky: namespace 'kube-system' is not granted"
    )
    assert "it may only write to 'team-a'" in f.message


def test_a_cluster_scoped_kind_the_team_may_not_declare_is_refused(tmp_path: Path) -> None:
    root = write_fleet(
        tmp_path,
        _manifests(
            """\
            - apiVersion: rbac.authorization.k8s.io/v1
              kind: ClusterRoleBinding
              metadata: {name: root}
              roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
              subjects: [{kind: Group, name: everyone, apiGroup: rbac.authorization.k8s.io}]
        """
        ),
    )
    with pytest.raises(CompileError) as info:
        compile_path(root)
    (f,) = info.value.findings
    assert str(f).startswith(
        "apps/m.yaml:6:7: ClusterRoleBinding/root: "
        "ClusterRoleBinding.rbac.authorization.k8s.io is cluster-scoped"
    )
    assert "fleet.yaml spec.grants[].kinds" in f.message


def test_a_secret_with_data_in_manifests_is_refused_at_validate(tmp_path: Path) -> None:
    root = write_fleet(
        tmp_path,
        _manifests(
            """\
            - apiVersion: v1
              kind: Secret
              metadata: {name: creds}
              stringData: {password: hunter2}
        """
        ),
    )
    with pytest.raises(ValidationError) as info:
        compile_path(root)
    (f,) = info.value.findings
    assert (f.position.path, f.position.line) == ("apps/m.yaml", 6)
    assert "Secret with values does not belong in git" in f.message


def test_two_apps_declaring_one_object_is_refused_naming_both(tmp_path: Path) -> None:
    root = write_fleet(
        tmp_path,
        {
            **_manifests(
                """\
            - apiVersion: v1
              kind: Service
              metadata: {name: web}
              spec: {ports: [{port: 80}]}
        """
            ),
            "apps/web.yaml": """\
            apiVersion: specc.dev/v1alpha1
            kind: Service
            metadata: {name: web, team: team-a}
            spec:
              image: x/web:1
              ports: [{name: http, port: 80}]
            """,
        },
    )
    with pytest.raises(CompileError, match="declared twice on cluster 'dev'") as info:
        compile_path(root)
    assert "Service/team-a/web" in str(info.value)


def test_compile_is_deterministic_and_sorted_by_identity(
    example: dict[str, ClusterRender],
) -> None:
    again = compile_path(EXAMPLE_FLEET)
    for name, render in example.items():
        assert [o.body for o in again[name].objects] == [o.body for o in render.objects]
        keys = [o.key for o in render.objects]
        assert keys == sorted(keys)


def test_names_the_api_server_would_refuse_are_reported_at_the_app_name(tmp_path: Path) -> None:
    long = "a" * 50
    root = write_fleet(
        tmp_path,
        {
            "apps/a.yaml": f"""\
            apiVersion: specc.dev/v1alpha1
            kind: Service
            metadata: {{name: 9lives, team: team-a}}
            spec:
              image: x/a:1
              ports: [{{name: http, port: 80}}]
            ---
            apiVersion: specc.dev/v1alpha1
            kind: StatefulService
            metadata: {{name: {long}, team: team-a}}
            spec:
              image: x/s:1
              members: 1
              storage: {{size: 1Gi}}
              backup: {{schedule: "0 3 * * *", image: x/b:1, command: [/b]}}
            """,
        },
    )
    with pytest.raises(CompileError) as info:
        compile_path(root)
    messages = {(f.position.line, f.subject, f.message.split(":")[0]) for f in info.value.findings}
    assert messages == {
        (3, "Service/team-a/9lives", "a Service name must start with a letter (RFC 1035), and '9lives' does not"),
        (10, f"CronJob/team-a/{long}-backup", f"CronJob name '{long}-backup' made from the app name is longer than 52 characters"),
    }  # fmt: skip


def test_a_config_key_naming_both_a_file_and_a_literal_is_refused(tmp_path: Path) -> None:
    root = write_fleet(
        tmp_path,
        {
            "apps/a.yaml": """\
            apiVersion: specc.dev/v1alpha1
            kind: Service
            metadata: {name: a, team: team-a}
            spec:
              image: x/a:1
              config:
                files: {SETTINGS: settings.txt}
                literals: {SETTINGS: "1"}
            """,
            "apps/settings.txt": "x = 1\n",
        },
    )
    with pytest.raises(CompileError, match=r"apps/a\.yaml:6:3: config key\(s\) \['SETTINGS'\]"):
        compile_path(root)
