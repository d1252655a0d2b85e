"""Differential check: the same requests to the double and to a real kube-apiserver 1.36.3.

Two sequences are sent to both servers, step by step: the recorded transcripts in
``shared/apiserver-transcripts/`` (in the README's order, one namespace), and the requests
of every server-side-apply scenario in ``test_apiserver_ssa`` that sends all its requests
through its ``call`` helper (recorded while the scenario runs on the double, replayed on
the real server). Status codes must be equal, and bodies equal once the volatile fields
the transcripts' README lists are scrubbed (resourceVersion: only whether it moved).

Every difference that remains is deliberate and listed in :data:`DELIBERATE` with its
reason; each is applied to both sides, so it cannot hide anything else.
"""

from __future__ import annotations

import copy
import inspect
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import pytest

import tests.test_apiserver_ssa as ssa_scenarios
from specc.testing import ApiServer
from specc.testing.pytest_plugin import TEST_NAMESPACE_PREFIX, KubeTarget
from tests.test_apiserver_transcripts import (
    FILES,
    RECORDED_NAMESPACE,
    _compare_discovery,
    _objects,
    _scrub,
)

#: Kinds a controller of the real control plane writes after specc or a test does (status,
#: conditions, annotations); the transcripts were recorded with no controllers running.
CONTROLLED = frozenset(
    {
        "Deployment",
        "ReplicaSet",
        "StatefulSet",
        "DaemonSet",
        "Job",
        "CronJob",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "PersistentVolumeClaim",
        "ResourceQuota",
        # A Scale's status is its workload's.
        "Scale",
    }
)


@dataclass(frozen=True)
class Deliberate:
    """A difference between the servers that is intended, and why."""

    what: str
    reason: str


DELIBERATE = [
    Deliberate(
        "status, `kube-controller-manager` managedFields entries and the "
        "`deployment.kubernetes.io/revision` annotation of controller-managed kinds "
        f"({', '.join(sorted(CONTROLLED))})",
        "the real control plane runs kube-controller-manager, which writes them moments after "
        "each change; the double has no controllers (and neither had the recorded server)",
    ),
    Deliberate(
        "whether resourceVersion moved, for controller-managed kinds",
        "a controller's status write moves it on the real server between any two requests",
    ),
    Deliberate(
        "a CRD GET right after its creation, and its group's discovery, are retried until "
        "the CRD is Established and the group served",
        "establishing is asynchronous on the real server (milliseconds); the double "
        "establishes before it answers; a client waits either way",
    ),
    Deliberate(
        "discovery documents: the double serves a subset of the real server's resources",
        "the double models the kinds specc and its tests use (the transcripts' README says "
        "the same); every resource it serves must equal the real one",
    ),
    Deliberate(
        "uid and resourceVersion values a recorded request carries (taken from an earlier "
        "answer) are replaced by the real server's values for the same object",
        "they are the server's own identifiers; sending the double's to the real server would "
        "test nothing but a mismatch",
    ),
]


def _normalise(body: Any) -> Any:
    """Return ``body`` scrubbed of volatile fields and of what :data:`DELIBERATE` lists."""
    body = _scrub(copy.deepcopy(body))

    def strip(obj: Any, kind: str) -> None:
        if not isinstance(obj, dict) or kind not in CONTROLLED:
            return
        obj.pop("status", None)
        meta = obj.get("metadata") or {}
        notes = meta.get("annotations") or {}
        notes.pop("deployment.kubernetes.io/revision", None)
        if "annotations" in meta and not notes:
            del meta["annotations"]
        entries = [
            e
            for e in meta.get("managedFields") or []
            if e.get("manager") != "kube-controller-manager"
        ]
        if "managedFields" in meta:
            meta["managedFields"] = entries

    if isinstance(body, dict):
        kind = str(body.get("kind", ""))
        if kind.endswith("List") and isinstance(body.get("items"), list):
            for item in body["items"]:
                strip(item, kind.removesuffix("List"))
        else:
            strip(body, kind)
    return body


@dataclass
class Side:
    """One server under test and the resourceVersions it answered so far."""

    target: KubeTarget
    versions: dict[tuple[str, str, str], str] = field(default_factory=dict)
    #: Every uid and resourceVersion answered so far, by object: to translate requests.
    identities: dict[tuple[str, str, str], list[str]] = field(default_factory=dict)

    def remember(self, body: Any) -> None:
        """Record the uid and resourceVersion of each object in an answer."""
        if not isinstance(body, dict) or body.get("kind") == "Status":
            return
        items = body.get("items") if isinstance(body.get("items"), list) else [body]
        for item in items:
            meta = (item or {}).get("metadata") or {}
            if "name" not in meta:
                continue
            kind = item.get("kind") or str(body.get("kind", "")).removesuffix("List")
            seen = self.identities.setdefault((kind, meta.get("namespace", ""), meta["name"]), [])
            seen.extend(str(meta[k]) for k in ("uid", "resourceVersion") if k in meta)

    def send(
        self,
        method: str,
        path: str,
        query: dict[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        accept: str = "application/json",
    ) -> tuple[int, Any]:
        api = self.target.api_client()
        url = path + ("?" + urlencode(query) if query else "")
        serialized = api.param_serialize(
            method,
            url,
            header_params={"Content-Type": content_type, "Accept": accept},
            body=body,
            auth_settings=["BearerToken"],
        )
        response = api.call_api(*serialized[:4])
        response.read()
        return int(response.status), json.loads(response.data) if response.data else None

    def moved(self, body: Any) -> dict[tuple[str, str, str], bool]:
        """Return, per object in ``body``, whether its resourceVersion moved since last seen."""
        out = {}
        for key, rv in _objects(body):
            previous = self.versions.get(key)
            if previous is not None and key[0] not in CONTROLLED:
                out[key] = previous != rv
            self.versions[key] = rv
        return out


def _established(side: Side, path: str) -> None:
    """Wait, on the real server, until the CRD at ``path`` is Established."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status, body = side.send("GET", path)
        conditions = ((body or {}).get("status") or {}).get("conditions") or []
        if status == 200 and any(
            c.get("type") == "Established" and c.get("status") == "True" for c in conditions
        ):
            return
        time.sleep(0.05)


def _served(side: Side, path: str) -> None:
    deadline = time.monotonic() + 30
    while side.send("GET", path)[0] != 200 and time.monotonic() < deadline:
        time.sleep(0.05)


def _compare_step(where: str, double: Side, real: Side, answers: tuple[Any, Any]) -> list[str]:
    (d_status, d_body), (r_status, r_body) = answers
    if d_status != r_status:
        return [f"{where}: status {d_status} on the double, {r_status} on the real server"]
    problems = []
    if _normalise(d_body) != _normalise(r_body):
        problems.append(
            f"{where}: bodies differ\n  double: {json.dumps(_normalise(d_body))[:1500]}\n"
            f"  real:   {json.dumps(_normalise(r_body))[:1500]}"
        )
    d_moved, r_moved = double.moved(d_body), real.moved(r_body)
    for key in d_moved.keys() & r_moved.keys():
        if d_moved[key] != r_moved[key]:
            problems.append(
                f"{where}: resourceVersion of {key} moved on "
                f"{'the double' if d_moved[key] else 'the real server'} only"
            )
    return problems


@pytest.fixture
def sides(real_kube: KubeTarget) -> Iterator[tuple[Side, Side]]:
    """A double (reporting 1.36.3) and the real server, each with the real test's namespace."""
    with ApiServer(version="v1.36.3") as server:
        target = KubeTarget(server.kubeconfig_path, real_kube.namespace, server)
        from kubernetes import client

        client.CoreV1Api(server.api_client()).create_namespace(
            {"metadata": {"name": real_kube.namespace}}  # type: ignore[arg-type]
        )
        yield Side(target), Side(real_kube)


def test_recorded_transcripts_answer_alike_on_both_servers(real_kube: KubeTarget) -> None:
    """Every transcript step: same status, same body (scrubbed), same resourceVersion moves."""
    namespace = f"{TEST_NAMESPACE_PREFIX}tx-{uuid.uuid4().hex[:6]}"
    problems: list[str] = []
    with ApiServer(version="v1.36.3") as server:
        double = Side(KubeTarget(server.kubeconfig_path, namespace, server))
        real = Side(real_kube)
        for transcript in FILES:
            document = json.loads(transcript.read_text())
            for index, step in enumerate(document["steps"]):
                request = json.loads(
                    json.dumps(step["request"]).replace(RECORDED_NAMESPACE, namespace)
                )
                where = f"{transcript.stem} step {index}: {request['method']} {request['path']}"
                args = (
                    request["method"],
                    request["path"],
                    request.get("query") or {},
                    request.get("body"),
                    request.get("content_type") or "application/json",
                    request.get("accept") or "application/json",
                )
                if document["scenario"] == "crd-and-cr" and request["method"] == "GET":
                    wait = (
                        _established if "customresourcedefinitions" in request["path"] else _served
                    )
                    wait(real, request["path"])
                answers = (double.send(*args), real.send(*args))
                if document["scenario"] == "discovery":
                    (d_status, d_body), (r_status, r_body) = answers
                    if d_status != r_status:
                        problems.append(f"{where}: {d_status} vs {r_status}")
                        continue
                    try:
                        _compare_discovery(request["path"], r_body, d_body)
                    except AssertionError as exc:
                        problems.append(f"{where}: discovery differs: {exc}")
                    continue
                problems += _compare_step(where, double, real, answers)
    assert not problems, "\n".join(problems)


# -- the SSA scenarios ---------------------------------------------------------------------


#: Scenarios that also send requests through the kubernetes client's own API classes
#: (what they test is that client's behaviour), so their requests are not all recorded.
NOT_REPLAYED = {
    "test_dynamic_client_surfaces_conflict_error": "the dynamic client raises ConflictError",
    "test_update_without_field_manager_is_named_by_user_agent": "CoreV1Api's User-Agent",
}


def _recordable() -> list[tuple[str, Callable[..., None], dict[str, Any]]]:
    """Return (id, scenario, extra arguments) for every SSA scenario, parametrized ones once each."""
    out = []
    for name, function in sorted(vars(ssa_scenarios).items()):
        if not name.startswith("test_") or not callable(function) or name in NOT_REPLAYED:
            continue
        params = [p for p in inspect.signature(function).parameters if p != "kube"]
        marks = {
            m.args[0]: m.args[1]
            for m in getattr(function, "pytestmark", [])
            if m.name == "parametrize" and isinstance(m.args[0], str)
        }
        if not params:
            out.append((name, function, {}))
        elif len(params) == 1 and params[0] in marks:
            for i, value in enumerate(marks[params[0]]):
                out.append((f"{name}[{i}]", function, {params[0]: value}))
    return out


SCENARIOS = _recordable()


@pytest.mark.parametrize(
    ("scenario", "extra"),
    [(s[1], s[2]) for s in SCENARIOS],
    ids=[s[0].removeprefix("test_") for s in SCENARIOS],
)
def test_ssa_scenario_requests_answer_alike_on_both_servers(
    sides: tuple[Side, Side], scenario: Callable[..., None], extra: dict[str, Any]
) -> None:
    double, real = sides
    assert double.target.server is not None
    recorded: list[dict[str, Any]] = []
    ssa_scenarios.RECORDING = recorded
    try:
        before = len(double.target.server.requests)
        scenario(double.target, **extra)
        sent = len(double.target.server.requests) - before
    finally:
        ssa_scenarios.RECORDING = None
    assert sent == len(recorded), "the scenario sent requests call() did not record"
    problems: list[str] = []
    for index, step in enumerate(recorded):
        where = f"step {index}: {step['method']} {step['path']}"
        answer = real.send(
            step["method"],
            step["path"],
            step["query"],
            _translate(step["body"], double, real),
            step["content_type"],
        )
        double.remember(step["response"])
        real.remember(answer[1])
        problems += _compare_step(where, double, real, ((step["status"], step["response"]), answer))
    assert not problems, "\n".join(problems)


def _translate(body: Any, double: Side, real: Side) -> Any:
    """Return ``body`` with the double's uids and resourceVersions replaced by the real ones."""
    mapping = {}
    for key, values in double.identities.items():
        for mine, theirs in zip(values, real.identities.get(key, []), strict=False):
            mapping[mine] = theirs

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                k: (
                    mapping.get(v, v)
                    if k in ("uid", "resourceVersion") and isinstance(v, str)
                    else walk(v)
                )
                for k, v in node.items()
            }
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(body)
