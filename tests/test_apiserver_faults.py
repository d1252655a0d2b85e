"""Fault injection, request log and counters, watch, and the command line of the double."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import urllib3
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from specc.testing import ApiServer, FaultRule


def _core(server: ApiServer, retries: int = 0) -> client.CoreV1Api:
    api = server.api_client()
    api.configuration.retries = retries
    api.rest_client.pool_manager.connection_pool_kw["retries"] = retries
    return client.CoreV1Api(api)


def _cm(name: str) -> dict[str, object]:
    return {"metadata": {"name": name}, "data": {"k": "v"}}


def test_injected_429_carries_retry_after_and_a_status_body(apiserver: ApiServer) -> None:
    rule = apiserver.faults.add(
        "/api/v1/namespaces/default/configmaps", "POST", status=429, retry_after=7
    )
    core = _core(apiserver)
    with pytest.raises(ApiException) as throttled:
        core.create_namespaced_config_map("default", _cm("a"))
    assert throttled.value.status == 429
    assert throttled.value.headers["Retry-After"] == "7"
    body = json.loads(throttled.value.body)
    assert (body["kind"], body["reason"], body["code"]) == ("Status", "TooManyRequests", 429)
    assert rule.fired == 1
    assert core.list_namespaced_config_map("default").items == []


@pytest.mark.parametrize("code", [500, 503, 504])
def test_injected_server_errors_fire_a_limited_number_of_times(
    apiserver: ApiServer, code: int
) -> None:
    apiserver.faults.add("/api/v1/namespaces/*/configmaps*", status=code, times=2)
    core = _core(apiserver)
    for _ in range(2):
        with pytest.raises(ApiException) as failed:
            core.list_namespaced_config_map("default")
        assert failed.value.status == code
    assert core.list_namespaced_config_map("default").items == []


def test_fault_rate_is_a_probability(apiserver: ApiServer) -> None:
    apiserver.faults.reseed(1)
    apiserver.faults.add("/version", status=503, rate=0.5)
    http = urllib3.PoolManager(retries=False)
    statuses = [http.request("GET", apiserver.url + "/version").status for _ in range(200)]
    assert 60 < statuses.count(503) < 140
    assert set(statuses) == {200, 503}


def test_added_latency_delays_matching_requests_only(apiserver: ApiServer) -> None:
    apiserver.faults.add("/api/v1/namespaces/default/configmaps", "GET", latency=0.3)
    core = _core(apiserver)
    started = time.monotonic()
    core.list_namespaced_config_map("default")
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    core.list_namespace()
    assert time.monotonic() - started < 0.3


def test_wait_idle_returns_once_a_write_the_client_gave_up_on_has_landed(
    apiserver: ApiServer,
) -> None:
    apiserver.faults.add("/api/v1/namespaces/default/configmaps", "POST", latency=0.5)
    core = _core(apiserver)
    with pytest.raises(urllib3.exceptions.HTTPError):
        core.create_namespaced_config_map("default", _cm("late"), _request_timeout=0.1)
    # A watch in progress is not a request in flight: wait_idle does not wait for it.
    stream = threading.Thread(
        target=lambda: list(watch.Watch().stream(core.list_namespace, timeout_seconds=3)),
        daemon=True,
    )
    stream.start()
    deadline = time.monotonic() + 2
    while apiserver.log.count("watch") == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert apiserver.log.count("watch") == 1, "the watch is streaming"
    apiserver.wait_idle(timeout=2)
    assert core.read_namespaced_config_map("late", "default").data == {"k": "v"}
    with pytest.raises(TimeoutError):
        apiserver.faults.add("/api/v1/namespaces", "GET", latency=1.0, times=1)
        threading.Thread(target=core.list_namespace, daemon=True).start()
        time.sleep(0.1)
        apiserver.wait_idle(timeout=0.2)


def test_dropped_connections_fail_at_the_transport(apiserver: ApiServer) -> None:
    apiserver.faults.add("/api/v1/namespaces", "GET", drop=True, times=1)
    http = urllib3.PoolManager(retries=False)
    with pytest.raises(urllib3.exceptions.HTTPError):
        http.request("GET", apiserver.url + "/api/v1/namespaces")
    assert http.request("GET", apiserver.url + "/api/v1/namespaces").status == 200


def test_kill_after_n_writes_stops_the_server_answering(apiserver: ApiServer) -> None:
    apiserver.faults.kill_after_writes(2)
    core = _core(apiserver)
    core.create_namespaced_config_map("default", _cm("a"))
    core.create_namespaced_config_map("default", _cm("b"))
    with pytest.raises(urllib3.exceptions.HTTPError):
        core.create_namespaced_config_map("default", _cm("c"))
    apiserver.faults.revive()
    names = [i.metadata.name for i in _core(apiserver).list_namespaced_config_map("default").items]
    assert names == ["a", "b"]


def test_request_log_and_counters_by_verb_and_resource(apiserver: ApiServer) -> None:
    core = _core(apiserver)
    apiserver.log.clear()
    core.create_namespaced_config_map("default", _cm("a"))
    core.read_namespaced_config_map("a", "default")
    core.list_namespaced_config_map("default")
    core.patch_namespaced_config_map(
        "a",
        "default",
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"k": "w"}},
        field_manager="specc",
        force=True,
        _content_type="application/apply-patch+yaml",
    )
    core.delete_namespaced_config_map("a", "default")
    assert apiserver.counters == {
        ("create", "configmaps"): 1,
        ("get", "configmaps"): 1,
        ("list", "configmaps"): 1,
        ("apply", "configmaps"): 1,
        ("delete", "configmaps"): 1,
    }
    assert apiserver.log.writes() == 3
    apply = apiserver.requests[3]
    assert (apply.method, apply.field_manager, apply.status) == ("PATCH", "specc", 200)
    assert apply.content_type == "application/apply-patch+yaml"


def test_reset_forgets_objects_faults_and_log(apiserver: ApiServer) -> None:
    core = _core(apiserver)
    core.create_namespaced_config_map("default", _cm("a"))
    apiserver.faults.add("/version", status=500)
    apiserver.reset()
    assert core.list_namespaced_config_map("default").items == []
    assert apiserver.faults.rules == []
    assert [n.metadata.name for n in core.list_namespace().items] == [
        "default",
        "kube-node-lease",
        "kube-public",
        "kube-system",
    ]


def test_watch_streams_changes_after_a_resource_version(apiserver: ApiServer) -> None:
    core = _core(apiserver)
    start = core.list_namespaced_config_map("default").metadata.resource_version
    events: list[tuple[str, str]] = []

    def follow() -> None:
        stream = watch.Watch().stream(
            core.list_namespaced_config_map, "default", resource_version=start, timeout_seconds=3
        )
        for event in stream:
            events.append((event["type"], event["object"].metadata.name))
            if len(events) == 3:
                break

    thread = threading.Thread(target=follow)
    thread.start()
    time.sleep(0.2)
    core.create_namespaced_config_map("default", _cm("w"))
    core.patch_namespaced_config_map("w", "default", {"data": {"k": "2"}})
    core.delete_namespaced_config_map("w", "default")
    thread.join(10)
    assert events == [("ADDED", "w"), ("MODIFIED", "w"), ("DELETED", "w")]


def test_fault_rules_parse_from_cli_text() -> None:
    rule = FaultRule.parse("PATCH /apis/apps/*:code=503,rate=0.2,latency=0.1,times=3")
    assert (rule.method, rule.path, rule.status, rule.rate, rule.latency, rule.times) == (
        "PATCH",
        "/apis/apps/*",
        503,
        0.2,
        0.1,
        3,
    )
    assert FaultRule.parse("/version:drop").drop


def test_cli_prints_its_url_writes_a_kubeconfig_and_injects_faults(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "specc.testing.apiserver",
            "--port",
            "0",
            "--kubeconfig",
            str(kubeconfig),
            "--version",
            "v1.30.2",
            "--fault",
            "GET /healthz:code=503",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "error::RuntimeWarning"},
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        config = json.loads(kubeconfig.read_text())
        assert config["clusters"][0]["cluster"]["server"] == url
        http = urllib3.PoolManager(retries=False)
        assert json.loads(http.request("GET", url + "/version").data)["gitVersion"] == "v1.30.2"
        assert http.request("GET", url + "/healthz").status == 503
    finally:
        process.terminate()
        process.wait(10)
