"""Pod Security admission, on the double and on the real control plane (the judge).

The whole rendered example fleet goes into namespaces labelled
``pod-security.kubernetes.io/enforce=restricted`` and ``warn=restricted``: every
workload (server-side dry run) draws no warning, and a Pod made from each template is
admitted. A pod as specc used to render it (no securityContext) is refused, and specc's
own check says the same of it. And each pod of the check's own table is judged by the
real admission as specc judges it.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from specc.check.podsecurity import TEMPLATE_PATHS, pod_violations
from specc.pipeline import render_path
from specc.testing.pytest_plugin import REAL_GROUP, KubeTarget
from tests.render_helpers import EXAMPLE_FLEET

RESTRICTED = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/warn": "restricted",
}
_PLURAL = {
    "Deployment": "deployments",
    "StatefulSet": "statefulsets",
    "CronJob": "cronjobs",
    "DaemonSet": "daemonsets",
    "Job": "jobs",
}


def _send(api: Any, method: str, path: str, body: Any) -> tuple[int, list[str], Any]:
    """Return status, Warning headers and body of one request."""
    serialized = api.param_serialize(
        method,
        path,
        header_params={"Accept": "application/json", "Content-Type": "application/json"},
        body=body,
        auth_settings=["BearerToken"],
    )
    response = api.call_api(*serialized[:4])
    response.read()
    headers = response.getheaders() or {}
    warnings = [v for k, v in headers.items() if k.lower() == "warning"]
    return int(response.status), warnings, json.loads(response.data) if response.data else {}


def _namespace(api: Any, name: str, accounts: tuple[str, ...] = ("default",)) -> None:
    """Create a restricted namespace and its ServiceAccounts (pods name one; the
    controller that makes "default" may not have run yet)."""
    status, _, data = _send(api, "POST", "/api/v1/namespaces", {"metadata": {"name": name, "labels": RESTRICTED}})  # fmt: skip
    assert status == 201, data
    for account in accounts:
        body = {"metadata": {"name": account}}
        status, _, data = _send(api, "POST", f"/api/v1/namespaces/{name}/serviceaccounts", body)
        assert status in (201, 409), data


def _path(api_version: str, plural: str, namespace: str) -> str:
    base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    return f"{base}/namespaces/{namespace}/{plural}?dryRun=All&fieldManager=specc"


def _template(obj: dict[str, Any]) -> dict[str, Any]:
    node: Any = obj
    for key in TEMPLATE_PATHS[(obj["apiVersion"], obj["kind"])]:
        node = node[key]
    return dict(node)


def test_the_rendered_fleet_meets_restricted_on_the_api_server(kube: KubeTarget) -> None:
    api = kube.api_client()
    _, renders = render_path(EXAMPLE_FLEET)
    namespaces: dict[str, str] = {}
    checked = 0
    for render in renders:
        for desired in render.objects:
            obj = copy.deepcopy(desired.body)
            if (obj["apiVersion"], obj["kind"]) not in TEMPLATE_PATHS or obj["kind"] == "Pod":
                continue
            ns = obj["metadata"]["namespace"]
            if ns not in namespaces:
                namespaces[ns] = f"{kube.namespace}-{ns}"[:63]
                _namespace(api, namespaces[ns], ("default", "specc-agent"))
            obj["metadata"]["namespace"] = namespaces[ns]
            plural = _PLURAL[obj["kind"]]
            status, warnings, data = _send(
                api, "POST", _path(obj["apiVersion"], plural, namespaces[ns]), obj
            )
            assert status == 201, (render.cluster, desired.ref, data)
            assert warnings == [], (render.cluster, desired.ref, warnings)
            # Enforce applies to pods: one made from the template must be admitted.
            template = copy.deepcopy(_template(obj))
            # As the StatefulSet controller does: a claim per volumeClaimTemplate.
            for claim in obj["spec"].get("volumeClaimTemplates", []):
                name = claim["metadata"]["name"]
                volume = {"name": name, "persistentVolumeClaim": {"claimName": f"{name}-x-0"}}
                template["spec"].setdefault("volumes", []).append(volume)
            pod = {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": f"{obj['metadata']['name']}-probe",
                    **template.get("metadata", {}),
                },
                "spec": template["spec"],
            }
            status, warnings, data = _send(api, "POST", _path("v1", "pods", namespaces[ns]), pod)
            assert status == 201, (render.cluster, desired.ref, data.get("message"))
            assert warnings == [], (render.cluster, desired.ref, warnings)
            checked += 1
    assert checked >= 10


def test_a_pod_without_security_context_is_refused_by_the_api_server_and_by_specc(
    kube: KubeTarget,
) -> None:
    """Seen: no rendered pod had a securityContext, and restricted rejects such pods."""
    api = kube.api_client()
    ns = f"{kube.namespace}-r"
    _namespace(api, ns)
    template = {
        "metadata": {"labels": {"app": "old"}},
        "spec": {"containers": [{"name": "db", "image": "postgres:16.4"}]},
    }
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "old"}, "spec": template["spec"]}
    status, _, data = _send(api, "POST", _path("v1", "pods", ns), pod)
    assert status == 403, data
    said = data["message"]
    assert 'violates PodSecurity "restricted:latest"' in said
    ours = pod_violations(template, "restricted")
    # Each control the API server names, specc names too (in the same words).
    for control in ("allowPrivilegeEscalation != false", "unrestricted capabilities", "runAsNonRoot != true", "seccompProfile"):  # fmt: skip
        assert control in said, said
        assert any(v.message.startswith(control) for v in ours), (control, ours)
    assert len({v.message.split(" (")[0] for v in ours}) == 4
    # A workload is admitted, with a warning: what the fleet test above sees none of.
    deploy = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "old"},
        "spec": {"selector": {"matchLabels": {"app": "old"}}, "template": template},
    }
    status, warnings, data = _send(api, "POST", _path("apps/v1", "deployments", ns), deploy)
    assert status == 201, data
    assert any("would violate PodSecurity" in w and "restricted:latest" in w for w in warnings)


@pytest.mark.real
@pytest.mark.xdist_group(REAL_GROUP)
def test_specc_names_the_controls_that_the_real_admission_refuses(real_kube: KubeTarget) -> None:
    """Each pod of the check's table, created in a namespace enforcing its level: the
    real PodSecurity admission refuses exactly those specc finds fault with, naming the
    same controls."""
    from tests.test_pod_security import CASES

    api = real_kube.api_client()
    made: set[str] = set()
    wrong: list[tuple[int, str, Any]] = []
    invalid: list[int] = []
    for i, (template, level, _) in enumerate(CASES):
        if level == "privileged":
            continue
        ns = f"{real_kube.namespace}-{level}"
        if ns not in made:
            status, _, data = _send(api, "POST", "/api/v1/namespaces", {"metadata": {"name": ns, "labels": {"pod-security.kubernetes.io/enforce": level}}})  # fmt: skip
            assert status == 201, data
            status, _, data = _send(api, "POST", f"/api/v1/namespaces/{ns}/serviceaccounts", {"metadata": {"name": "default"}})  # fmt: skip
            assert status in (201, 409), data
            made.add(ns)
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"case-{i}"}, "spec": copy.deepcopy(template["spec"])}  # fmt: skip
        status, _, data = _send(api, "POST", _path("v1", "pods", ns), pod)
        ours = {v.message.split(" (")[0] for v in pod_violations(template, level)}  # type: ignore[arg-type]
        if status == 422:  # not a valid pod at all (procMount Unmasked needs hostUsers: false)
            invalid.append(i)
            continue
        if not ours:
            if status != 201:
                wrong.append((i, "refused", data.get("message")))
            continue
        if status != 403:
            wrong.append((i, f"admitted ({status}) though specc says {sorted(ours)}", data.get("message")))  # fmt: skip
            continue
        wrong += [
            (i, control, data["message"]) for control in ours if control not in data["message"]
        ]
    assert wrong == []
    assert len(invalid) <= 1, invalid
