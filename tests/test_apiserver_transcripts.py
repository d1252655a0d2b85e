"""Replay recorded kube-apiserver v1.36 transcripts against the API server double.

Ground truth is ``shared/apiserver-transcripts/`` (see its README): every request is
sent in the recorded order, with the recorded namespace mapped to a fresh one, and the
status code and body must match. Only the README's volatile fields are ignored: uid,
creationTimestamp, resourceVersion (only whether it changed is compared), managedFields
time, allocated cluster IPs, and discovery/OpenAPI content beyond what the double
serves. Condition ``lastTransitionTime`` is a timestamp too and is ignored like
``managedFields[].time``.
"""

from __future__ import annotations

import copy
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import urllib3

from specc.testing import ApiServer

TRANSCRIPTS = Path(
    os.environ.get(
        "SPECC_TRANSCRIPTS",
        Path(__file__).resolve().parents[2] / "shared" / "apiserver-transcripts",
    )
)
if not TRANSCRIPTS.is_dir():
    TRANSCRIPTS = Path("/work/shared/apiserver-transcripts")

ORDER = [
    "discovery",
    "namespace-apply",
    "apply-*",
    "quantity-canonical-form",
    "drift-and-heal",
    "conflict-without-force",
    "list-with-label-selector",
    "errors",
    "crd-and-cr",
    "delete",
]
RECORDED_NAMESPACE = "tx-23404"


def _ordered_files() -> list[Path]:
    files: list[Path] = []
    for pattern in ORDER:
        files.extend(sorted(TRANSCRIPTS.glob(f"{pattern}.json")))
    return files


FILES = _ordered_files()


class Replay:
    """One double for the whole replay, plus the resourceVersions seen so far."""

    def __init__(self, server: ApiServer) -> None:
        self.server = server
        self.http = urllib3.PoolManager()
        self.namespace = f"tx-{uuid.uuid4().hex[:8]}"
        self.recorded_rv: dict[tuple[str, str, str], str] = {}
        self.actual_rv: dict[tuple[str, str, str], str] = {}

    def localise(self, value: Any) -> Any:
        """Return ``value`` with the recorded namespace replaced by the fresh one."""
        if isinstance(value, str):
            return value.replace(RECORDED_NAMESPACE, self.namespace)
        if isinstance(value, dict):
            return {self.localise(k): self.localise(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.localise(v) for v in value]
        return value

    def send(self, request: dict[str, Any]) -> tuple[int, str, Any]:
        path = self.localise(request["path"])
        query = self.localise(request.get("query") or {})
        headers = {"Accept": request.get("accept") or "application/json"}
        body = None
        if "body" in request:
            body = json.dumps(self.localise(request["body"])).encode()
            headers["Content-Type"] = request.get("content_type") or "application/json"
        url = self.server.url + path
        if query:
            url += "?" + urlencode(query)
        response = self.http.request(request["method"], url, body=body, headers=headers)
        content_type = response.headers.get("Content-Type", "")
        return response.status, content_type, json.loads(response.data)


@pytest.fixture(scope="module")
def replay() -> Iterator[Replay]:
    with ApiServer(version="v1.36.2") as server:
        yield Replay(server)


def _scrub(value: Any) -> Any:
    """Return a copy without the volatile fields the README lists."""
    value = copy.deepcopy(value)

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            meta = node.get("metadata")
            if isinstance(meta, dict):
                for key in ("uid", "creationTimestamp", "resourceVersion"):
                    meta.pop(key, None)
                for entry in meta.get("managedFields") or []:
                    entry.pop("time", None)
            details = node.get("details")
            if node.get("kind") == "Status" and isinstance(details, dict):
                details.pop("uid", None)
            spec = node.get("spec")
            allocated = isinstance(spec, dict) and spec.get("clusterIP") not in (None, "None")
            if allocated and node.get("kind") in ("Service", None):
                spec.pop("clusterIP", None)
                spec.pop("clusterIPs", None)
            for condition in (
                (node.get("status") or {}).get("conditions") or []
                if isinstance(node.get("status"), dict)
                else []
            ):
                if isinstance(condition, dict):
                    condition.pop("lastTransitionTime", None)
            for child in node.values():
                walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk(value)
    return value


def _objects(body: Any) -> Iterator[tuple[tuple[str, str, str], str]]:
    """Yield ((kind, namespace, name), resourceVersion) for each object in a response."""
    if not isinstance(body, dict) or body.get("kind") == "Status":
        return
    items = body.get("items") if isinstance(body.get("items"), list) else [body]
    for item in items:
        meta = item.get("metadata") or {}
        if "name" in meta and "resourceVersion" in meta:
            kind = item.get("kind") or body.get("kind", "").removesuffix("List")
            key = (kind, meta.get("namespace", ""), meta["name"])
            yield key, meta["resourceVersion"]


def _compare_discovery(path: str, recorded: Any, actual: Any) -> None:
    if path == "/version":
        for key in ("major", "minor", "gitVersion", "emulationMajor", "emulationMinor"):
            assert actual[key] == recorded[key], key
        return
    if path.startswith("/openapi/v3"):
        for key, entry in actual["paths"].items():
            assert key in recorded["paths"], f"{key} not served by the real server"
            assert entry["serverRelativeURL"].startswith(f"/openapi/v3/{key}?hash=")
        return
    kind = actual["kind"]
    assert kind == recorded["kind"]
    if kind == "APIResourceList":
        assert {k: v for k, v in actual.items() if k != "resources"} == {
            k: v for k, v in recorded.items() if k != "resources"
        }
        expected = {r["name"]: r for r in recorded["resources"]}
        for entry in actual["resources"]:
            assert entry == expected.get(entry["name"]), entry["name"]
        names = [r["name"] for r in actual["resources"]]
        assert names == sorted(names)
    elif kind == "APIVersions":
        assert actual["versions"] == recorded["versions"]
    elif kind == "APIGroupList":
        expected = {g["name"]: g for g in recorded["groups"]}
        for group in actual["groups"]:
            real = expected[group["name"]]
            assert group["preferredVersion"] == real["preferredVersion"], group["name"]
            assert all(v in real["versions"] for v in group["versions"]), group["name"]
        order = [g["name"] for g in recorded["groups"]]
        assert [g["name"] for g in actual["groups"]] == [
            n for n in order if n in expected and n in {g["name"] for g in actual["groups"]}
        ]
    elif kind == "APIGroupDiscoveryList":
        assert actual["apiVersion"] == recorded["apiVersion"]
        expected = {}
        for group in recorded["items"]:
            for version in group["versions"]:
                for resource in version["resources"]:
                    expected[
                        (
                            group["metadata"].get("name", ""),
                            version["version"],
                            resource["resource"],
                        )
                    ] = resource
        for group in actual["items"]:
            for version in group["versions"]:
                assert version["freshness"] == "Current"
                for resource in version["resources"]:
                    key = (
                        group["metadata"].get("name", ""),
                        version["version"],
                        resource["resource"],
                    )
                    assert resource == expected.get(key), key
    else:
        raise AssertionError(f"unexpected discovery document {kind}")


@pytest.fixture(scope="module")
def replayed(replay: Replay) -> dict[str, str]:
    """Replay every file in the README's order; return each file's failure ("" if none).

    The files depend on one another (one namespace, resourceVersions carried over), so
    they run in order here, once, whatever order or worker the tests run in.
    """
    results = {}
    for transcript in FILES:
        try:
            _replay_file(replay, transcript)
            results[transcript.stem] = ""
        except AssertionError as exc:
            results[transcript.stem] = str(exc)
    return results


@pytest.mark.parametrize("transcript", FILES, ids=[f.stem for f in FILES])
def test_transcript_replays_identically(replayed: dict[str, str], transcript: Path) -> None:
    failure = replayed[transcript.stem]
    assert not failure, failure


def _replay_file(replay: Replay, transcript: Path) -> None:
    document = json.loads(transcript.read_text())
    for index, step in enumerate(document["steps"]):
        request, expected = step["request"], step["response"]
        status, content_type, body = replay.send(request)
        where = f"{transcript.stem} step {index}: {request['method']} {request['path']}"
        assert status == expected["status"], f"{where}: {json.dumps(body)[:2000]}"
        assert content_type.split(";")[0] == expected["content_type"].split(";")[0], where
        recorded = replay.localise(expected["body"])
        if document["scenario"] == "discovery":
            _compare_discovery(request["path"], recorded, body)
            continue
        assert _scrub(body) == _scrub(recorded), where
        for key, rv in _objects(recorded):
            previous = replay.recorded_rv.get(key)
            replay.recorded_rv[key] = rv
            actual = dict(_objects(body)).get(key)
            assert actual is not None, f"{where}: {key} missing"
            if previous is not None:
                changed_recorded = rv != previous
                changed_actual = actual != replay.actual_rv[key]
                assert changed_actual == changed_recorded, (
                    f"{where}: resourceVersion change of {key}"
                )
            replay.actual_rv[key] = actual
