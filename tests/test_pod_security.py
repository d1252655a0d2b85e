"""Pod Security: rendered pods meet "restricted" by default; validate checks every pod
template (Manifests included) against the namespace's level, at the spec's line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from specc.check.podsecurity import check_pod_security, pod_violations
from specc.errors import CheckError, Position, ValidationError
from specc.objects import DesiredObject
from specc.pipeline import render_path
from tests.render_helpers import EXAMPLE_FLEET, write_fleet

RESTRICTED_POD: dict[str, Any] = {
    "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
    "containers": [
        {
            "name": "app",
            "image": "x:1",
            "securityContext": {
                "allowPrivilegeEscalation": False,
                "capabilities": {"drop": ["ALL"]},
            },
        }
    ],
}


def _pod(**changes: Any) -> dict[str, Any]:
    import copy

    spec = copy.deepcopy(RESTRICTED_POD)
    for key, value in changes.items():
        if key == "container":
            spec["containers"][0]["securityContext"].update(value)
        elif key == "pod":
            spec["securityContext"].update(value)
        else:
            spec[key] = value
    return {"metadata": {}, "spec": spec}


#: Pod templates, a level, and the controls specc says they fail (the real API server's
#: PodSecurity admission is checked to say the same in tests/test_pod_security_admission.py).
CASES: list[tuple[dict[str, Any], str, list[str]]] = [
    (_pod(), "restricted", []),
    (_pod(hostNetwork=True), "baseline", ["host namespaces (hostNetwork=true)"]),
    # (privileged with allowPrivilegeEscalation false is no valid pod)
    (
        _pod(container={"privileged": True, "allowPrivilegeEscalation": True}),
        "baseline",
        ["privileged"],
    ),
    (
        _pod(container={"capabilities": {"add": ["SYS_ADMIN"], "drop": ["ALL"]}}),
        "baseline",
        ["non-default capabilities"],
    ),
    (_pod(container={"capabilities": {"add": ["CHOWN"], "drop": ["ALL"]}}), "baseline", []),
    (
        _pod(container={"capabilities": {"add": ["CHOWN"], "drop": ["ALL"]}}),
        "restricted",
        ["unrestricted capabilities"],
    ),
    (
        _pod(container={"capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]}}),
        "restricted",
        [],
    ),
    (
        _pod(volumes=[{"name": "h", "hostPath": {"path": "/"}}]),
        "baseline",
        ["hostPath volumes"],
    ),
    (_pod(volumes=[{"name": "n", "nfs": {"server": "s", "path": "/"}}]), "baseline", []),
    (
        _pod(volumes=[{"name": "n", "nfs": {"server": "s", "path": "/"}}]),
        "restricted",
        ["restricted volume types"],
    ),
    (_pod(volumes=[{"name": "t", "emptyDir": {}}]), "restricted", []),
    (_pod(pod={"seccompProfile": {"type": "Unconfined"}}), "baseline", ["seccompProfile"]),
    (
        _pod(pod={"sysctls": [{"name": "kernel.msgmax", "value": "1"}]}),
        "baseline",
        ["forbidden sysctls"],
    ),
    (_pod(container={"seLinuxOptions": {"type": "spc_t"}}), "baseline", ["seLinuxOptions"]),
    (_pod(hostUsers=False, container={"procMount": "Unmasked"}), "baseline", []),
    (_pod(container={"procMount": "Unmasked"}), "baseline", ["procMount"]),
    (_pod(container={"allowPrivilegeEscalation": True}), "baseline", []),
    (
        _pod(container={"allowPrivilegeEscalation": True}),
        "restricted",
        ["allowPrivilegeEscalation != false"],
    ),
    (_pod(container={"capabilities": {}}), "restricted", ["unrestricted capabilities"]),
    (
        _pod(pod={"runAsNonRoot": False}),
        "restricted",
        ["runAsNonRoot != true", "runAsNonRoot != true"],
    ),
    (_pod(pod={"runAsUser": 0}), "restricted", ["runAsUser=0"]),
    (_pod(pod={"seccompProfile": None}), "restricted", ["seccompProfile"]),
    # The pod's runAsNonRoot is enough; a container that sets its own is too.
    (_pod(pod={"runAsNonRoot": None}, container={"runAsNonRoot": True}), "restricted", []),
    (_pod(hostNetwork=True, container={"privileged": True}), "privileged", []),
]


@pytest.mark.parametrize(("template", "level", "expected"), CASES)
def test_pod_security_controls(template: dict[str, Any], level: Any, expected: list[str]) -> None:
    got = [v.message for v in pod_violations(template, level)]
    assert len(got) == len(expected), got
    for message, start in zip(got, expected, strict=True):
        assert message.startswith(start), (message, start)


def test_host_probes_count_from_kubernetes_1_34() -> None:
    t = _pod()
    t["spec"]["containers"][0]["readinessProbe"] = {"httpGet": {"host": "10.0.0.1", "port": 80}}
    assert pod_violations(t, "baseline", 33) == []
    (v,) = pod_violations(t, "baseline", 34)
    assert v.loc == ("spec", "containers", 0, "readinessProbe", "httpGet", "host")


def _obj(body: dict[str, Any], line: int) -> DesiredObject:
    return DesiredObject(body, Position("apps/x.yaml", line, 1))


def test_the_namespace_labels_set_the_level_and_a_stricter_warn_level_warns() -> None:
    ns = _obj(
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": "a",
                "labels": {
                    "pod-security.kubernetes.io/enforce": "baseline",
                    "pod-security.kubernetes.io/warn": "restricted",
                },
            },
        },
        1,
    )
    tpl = _pod(container={"allowPrivilegeEscalation": True})
    deploy = _obj(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "d", "namespace": "a"},
            "spec": {"template": tpl},
        },
        5,
    )
    other = _obj({**deploy.body, "metadata": {"name": "d", "namespace": "b"}}, 9)
    findings = check_pod_security([ns, deploy, other], "1.33")
    by_ns = {f.subject: f for f in findings}
    assert by_ns["Deployment/a/d"].severity == "warning"
    # No label: enforce baseline, warn restricted.
    assert by_ns["Deployment/b/d"].severity == "warning"
    assert by_ns["Deployment/b/d"].field_path == (
        "spec.template.spec.containers[0].securityContext.allowPrivilegeEscalation"
    )
    assert 'PodSecurity "restricted"' in by_ns["Deployment/b/d"].message


def test_the_example_fleet_meets_restricted_with_no_warning() -> None:
    fleet, _ = render_path(EXAMPLE_FLEET)
    assert not [w for w in fleet.warnings if "PodSecurity" in w.message]


TEAM = """\
apiVersion: specc.dev/v1alpha1
kind: Team
metadata: {name: team-a}
"""


def test_a_relaxed_service_is_refused_at_its_security_line(tmp_path: Path) -> None:
    root = write_fleet(
        tmp_path,
        {
            "apps/w.yaml": """\
            apiVersion: specc.dev/v1alpha1
            kind: Service
            metadata: {name: w, team: team-a}
            spec:
              image: x/w:1
              security:
                runAsNonRoot: false
                addCapabilities: [SYS_ADMIN]
            """,
        },
    )
    with pytest.raises(CheckError) as exc:
        render_path(root, ["dev"])
    (error,) = {str(f) for f in exc.value.findings}
    assert error.startswith("apps/w.yaml:6:3: Deployment/team-a/w: spec.template.spec.containers[0].securityContext.capabilities.add[0]: violates PodSecurity \"baseline\"")  # fmt: skip
    assert "'SYS_ADMIN'" in error
    # runAsNonRoot: false only misses restricted: a warning where no label says more.
    (root / "apps/w.yaml").write_text(
        (root / "apps/w.yaml").read_text().replace("SYS_ADMIN", "NET_BIND_SERVICE")
    )
    fleet, _ = render_path(root, ["dev"])
    warnings = sorted(str(f) for f in fleet.warnings)
    assert all("runAsNonRoot != true" in w for w in warnings), warnings
    assert warnings[-1].startswith("apps/w.yaml:6:3: Deployment/team-a/w: spec.template.spec.securityContext.runAsNonRoot: violates PodSecurity \"restricted\" (warn, by default")  # fmt: skip


def test_runas_root_with_runasnonroot_is_a_validation_error(tmp_path: Path) -> None:
    root = write_fleet(
        tmp_path,
        {
            "apps/w.yaml": """\
            apiVersion: specc.dev/v1alpha1
            kind: Service
            metadata: {name: w, team: team-a}
            spec:
              image: x/w:1
              security: {runAsUser: 0}
            """,
        },
    )
    with pytest.raises(ValidationError, match=r"apps/w\.yaml:6:\d+: .*runAsUser 0 is root"):
        render_path(root, ["dev"])


def test_a_manifests_pod_template_is_checked_at_its_own_line(tmp_path: Path) -> None:
    root = write_fleet(
        tmp_path,
        {
            "apps/m.yaml": """\
            apiVersion: specc.dev/v1alpha1
            kind: Manifests
            metadata: {name: m, team: team-a}
            spec:
              objects:
                - apiVersion: apps/v1
                  kind: DaemonSet
                  metadata: {name: agent}
                  spec:
                    selector: {matchLabels: {app: agent}}
                    template:
                      metadata: {labels: {app: agent}}
                      spec:
                        hostNetwork: true
                        containers:
                          - name: agent
                            image: x/agent:1
                            securityContext:
                              privileged: true
            """,
        },
    )
    with pytest.raises(CheckError) as exc:
        render_path(root, ["dev"])
    by_field = {f.field_path: f for f in exc.value.findings}
    host = by_field["spec.template.spec.hostNetwork"]
    assert (host.position.path, host.position.line) == ("apps/m.yaml", 14)
    priv = by_field["spec.template.spec.containers[0].securityContext.privileged"]
    assert priv.position.line == 19
    assert priv.subject == "DaemonSet/team-a/agent"


def test_a_team_namespace_labelled_restricted_makes_a_relaxation_an_error(tmp_path: Path) -> None:
    root = write_fleet(
        tmp_path,
        {
            "teams/team-a.yaml": """\
            apiVersion: specc.dev/v1alpha1
            kind: Team
            metadata: {name: team-a}
            spec:
              labels: {pod-security.kubernetes.io/enforce: restricted}
            """,
            "apps/w.yaml": """\
            apiVersion: specc.dev/v1alpha1
            kind: Service
            metadata: {name: w, team: team-a}
            spec:
              image: x/w:1
              security: {runAsNonRoot: false}
            """,
        },
    )
    with pytest.raises(CheckError) as exc:
        render_path(root, ["dev"])
    lines = sorted(str(f) for f in exc.value.findings)
    assert lines[0].startswith(
        "apps/w.yaml:6:3: Deployment/team-a/w: spec.template.spec.containers[0].securityContext.runAsNonRoot: violates PodSecurity \"restricted\" (enforce, namespace 'team-a')"
    ), lines
