"""What /metrics, /healthz and /readyz say when things go wrong, read over real HTTP."""

from __future__ import annotations

import re
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from specc.agent import Agent
from specc.metrics import STALL_REASONS
from specc.source import GitSourceOptions
from specc.sync import Cluster, ClusterOptions
from specc.testing import ApiServer
from specc.testing.pytest_plugin import KubeTarget
from tests.promlint import metrics_linter
from tests.test_agent import Repo, git, make_agent


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    r = Repo(tmp_path)
    r.commit("initial fleet")
    return r


@pytest.fixture
def agent(api: ApiServer, repo: Repo, tmp_path: Path) -> Iterator[Agent]:
    a = make_agent(api, repo, tmp_path)
    a.serve()
    try:
        yield a
    finally:
        a.stop.set()
        a.shutdown_server()


def _http(agent: Agent, path: str) -> tuple[int, str]:
    url = f"http://127.0.0.1:{agent._server.port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return int(r.status), r.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def _samples(agent: Agent) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    _, text = _http(agent, "/metrics")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _value(agent: Agent, name: str, **labels: str) -> float | None:
    want = set(labels.items())
    found = [v for (n, ls), v in _samples(agent).items() if n == name and want <= ls]
    return sum(found) if found else None


def test_a_refused_head_shows_as_stalled_although_resyncs_of_the_old_commit_succeed(
    agent: Agent, repo: Repo
) -> None:
    good = git(repo.work, "rev-parse", "HEAD")
    assert agent.step() == "applied"
    assert _value(agent, "specc_sync_ready") == 1
    assert _value(agent, "specc_sync_stalled") is None
    assert _value(agent, "specc_head_unapplied_seconds") == 0

    repo.edit("apps/storefront/catalog.yaml", "replicas: 2", "replicas: two")
    broken = repo.commit("typo")
    assert agent.step() == "invalid"
    first_success = _value(agent, "specc_last_successful_sync_timestamp_seconds")
    time.sleep(0.05)
    assert agent.step() in ("unchanged", "healed")  # a resync of the good commit
    assert _value(agent, "specc_last_successful_sync_timestamp_seconds") > first_success  # type: ignore[operator]
    assert _value(agent, "specc_sync_ready") == 0
    assert _value(agent, "specc_sync_stalled", reason="invalid") == 1
    assert _value(agent, "specc_sync_stalled") == 1, "one reason at a time"
    assert (_value(agent, "specc_head_unapplied_seconds") or 0) > 0
    assert _value(agent, "specc_applied_revision_info", revision=good) == 1
    assert _value(agent, "specc_attempted_revision_info", revision=broken) == 1
    assert _value(agent, "specc_head_revision_info", revision=broken) == 1
    assert _value(agent, "specc_errors_total", kind="invalid") == 1

    repo.edit("apps/storefront/catalog.yaml", "replicas: two", "replicas: 3")
    fixed = repo.commit("fix")
    assert agent.step() == "applied"
    assert _value(agent, "specc_sync_ready") == 1
    assert _value(agent, "specc_sync_stalled") is None
    assert _value(agent, "specc_head_unapplied_seconds") == 0
    assert _value(agent, "specc_applied_revision_info", revision=fixed) == 1
    assert _value(agent, "specc_sync_attempts_total", result="succeeded") == 3


def test_a_failing_sync_counts_as_failed_and_stalls(agent: Agent, api: ApiServer) -> None:
    api.faults.add("/apis/apps/*", method="PATCH", status=422)
    with pytest.raises(Exception, match="injected fault"):
        agent.step()
    assert _value(agent, "specc_sync_attempts_total", result="failed") == 1
    assert _value(agent, "specc_sync_stalled", reason="sync-failed") == 1
    assert _value(agent, "specc_api_requests_total", verb="apply", code="422")
    api.faults.clear()
    assert agent.step() == "applied"
    assert _value(agent, "specc_sync_stalled") is None


def test_api_requests_are_counted_by_verb_and_code(agent: Agent) -> None:
    agent.step()
    samples = _samples(agent)
    seen = {
        (dict(ls)["verb"], dict(ls)["code"])
        for (n, ls), _ in samples.items()
        if n == "specc_api_requests_total"
    }
    assert {("discovery", "200"), ("apply", "200")} <= seen or {
        ("discovery", "200"),
        ("apply", "201"),
    } <= seen, seen
    assert _value(agent, "specc_api_request_duration_seconds_count", verb="apply")
    assert _value(agent, "specc_git_fetch_duration_seconds_count") == 1
    assert _value(agent, "specc_git_fetch_failures_total") is None


def test_a_failing_fetch_is_counted_and_stalls(api: ApiServer, repo: Repo, tmp_path: Path) -> None:
    a = make_agent(
        api,
        repo,
        tmp_path,
        source=GitSourceOptions(url=str(tmp_path / "no-such.git"), workdir=tmp_path / "m"),
    )
    a.serve()
    try:
        with pytest.raises(Exception, match="git fetch failed"):
            a.step()
        assert _value(a, "specc_git_fetch_failures_total") == 1
        assert _value(a, "specc_errors_total", kind="fetch") == 1
        assert _value(a, "specc_sync_stalled", reason="fetch-failed") == 1
    finally:
        a.shutdown_server()


def _closed_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as s:
        return int(s.getsockname()[1])


def test_an_unreachable_api_server_fails_readyz_and_shows_in_metrics(
    repo: Repo, tmp_path: Path
) -> None:
    from kubernetes import client

    config = client.Configuration()
    config.host = f"http://127.0.0.1:{_closed_port()}"
    cluster = Cluster(
        client.ApiClient(config),
        ClusterOptions(connect_timeout=0.3, retries=1, backoff=0.01),
        sleep=lambda _: None,
    )
    from specc.agent import AgentOptions

    options = AgentOptions(
        source=GitSourceOptions(url=str(repo.remote), workdir=tmp_path / "m"),
        cluster="dev",
        listen=("127.0.0.1", 0),
        leader_election=False,
    )
    a = Agent(options, cluster)
    a.ready.set()  # as if it had applied before the server went away
    a.serve()
    try:
        with pytest.raises(Exception, match=r"127\.0\.0\.1"):
            a.step()
        assert _value(a, "specc_api_requests_total", code="error")
        assert _value(a, "specc_sync_stalled", reason="unreachable") == 1
        code, text = _http(a, "/readyz")
        assert code == 503 and "[-]api failed" in text, text
        assert _http(a, "/healthz")[0] == 200, "a process restart does not bring the server back"
    finally:
        a.shutdown_server()


def test_readyz_probes_the_api_server_when_no_request_told_it_lately(
    api: ApiServer, agent: Agent
) -> None:
    agent.step()
    assert _http(agent, "/readyz")[0] == 200
    rule = api.faults.add("*", drop=True)
    agent._server.probe_after = 0.5
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _http(agent, "/readyz")[0] == 200:
            time.sleep(0.2)
        code, text = _http(agent, "/readyz")
        assert code == 503 and "[-]api failed" in text, text
        assert rule.fired
        assert _value(agent, "specc_api_requests_total", verb="probe", code="error")
        api.faults.clear()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _http(agent, "/readyz")[0] != 200:
            time.sleep(0.2)
        assert _http(agent, "/readyz")[0] == 200
    finally:
        api.faults.clear()


def test_readyz_fails_while_not_leading_unless_excluded_and_the_hook_says_so(
    api: ApiServer, repo: Repo, tmp_path: Path
) -> None:
    a = make_agent(api, repo, tmp_path, leader_election=True, webhook_secret=b"k")
    a.serve()
    try:
        assert a.cluster.ping()  # a standby's first request (its lease renewal, say)
        assert _value(a, "specc_sync_ready") == 0, "a standby is not at the head either"
        a.leading.set()  # as the lease renewer does when it holds the Lease
        assert a.step() == "applied"
        a.leading.clear()  # and when another replica took it
        code, text = _http(a, "/readyz")
        assert code == 503 and "[-]leader failed: not leading" in text, text
        assert _http(a, "/readyz?exclude=leader") == (
            200,
            "[+]loop ok\n[+]api ok\n[+]started ok\nreadyz check passed\n",
        )
        import hashlib
        import hmac

        body = b"{}"
        sig = "sha256=" + hmac.new(b"k", body, hashlib.sha256).hexdigest()
        req = urllib.request.Request(
            f"http://127.0.0.1:{a._server.port}/hook",
            data=body,
            headers={"X-Hub-Signature-256": sig},
        )
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, timeout=5)
        assert err.value.code == 503 and not a.trigger.is_set()
        a.leading.set()
        assert _http(a, "/readyz")[0] == 200
    finally:
        a.shutdown_server()


def test_healthz_fails_when_a_step_stops_progressing_and_not_during_a_long_wait(
    api: ApiServer, repo: Repo, tmp_path: Path
) -> None:
    a = make_agent(api, repo, tmp_path, interval=600.0, resync=600.0)
    a._server.step_deadline = 1.0
    runner = threading.Thread(target=a.run)
    runner.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not a.ready.is_set():
            time.sleep(0.05)
        assert a.ready.is_set()
        time.sleep(1.5)  # waiting (interval 600) longer than the step deadline: healthy
        assert _http(a, "/healthz") == (200, "[+]loop ok\nhealthz check passed\n")
        api.faults.add("/api*", method="PATCH", latency=3.0)
        repo.edit("apps/storefront/catalog.yaml", "replicas: 2", "replicas: 5")
        repo.commit("scale")
        a.trigger.set()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _http(a, "/healthz")[0] == 200:
            time.sleep(0.1)
        code, text = _http(a, "/healthz")
        assert code == 503 and "[-]loop failed: one step has been running for" in text, text
    finally:
        api.faults.clear()
        a.stop.set()
        runner.join(timeout=30)
    assert not runner.is_alive()


# -- the exposition itself ---------------------------------------------------------------


def _exposition(agent: Agent, api: ApiServer, repo: Repo) -> str:
    agent.step()
    repo.edit("apps/storefront/catalog.yaml", "replicas: 2", "replicas: two")
    repo.commit("typo")
    agent.step()
    agent.metrics.watch_restarts.labels("dev", "gone").inc()
    agent.metrics.drift_events.labels("dev", "deleted").inc()
    agent.metrics.heal_duration.labels("dev").observe(0.3)
    return _http(agent, "/metrics")[1]


def test_no_created_series_and_every_label_value_is_named_in_its_help(
    agent: Agent, api: ApiServer, repo: Repo
) -> None:
    text = _exposition(agent, api, repo)
    assert "_created" not in text
    helps = dict(re.findall(r"^# HELP (\S+) (.*)$", text, re.M))
    checked = 0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            for label in ("kind", "result", "reason", "verb"):
                value = sample.labels.get(label)
                if value is not None:
                    text_of = helps.get(family.name) or helps[family.name + "_total"]
                    assert value in text_of, (family.name, label, value)
                    checked += 1
    assert checked > 5
    for reason in STALL_REASONS:
        assert reason in helps["specc_sync_stalled"]


def test_promtool_check_metrics_passes(agent: Agent, api: ApiServer, repo: Repo) -> None:
    command, what = metrics_linter()
    if command is None:
        pytest.skip(what)
    text = _exposition(agent, api, repo)
    out = subprocess.run(command, input=text, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, f"{what}: {out.stdout}{out.stderr}"


def test_docs_metrics_md_names_every_metric_the_agent_exports() -> None:
    from specc.metrics import AgentMetrics

    page = (Path(__file__).resolve().parent.parent / "docs/metrics.md").read_text()
    names = {m.name for m in AgentMetrics().registry.collect()}
    assert len(names) > 20
    missing = sorted(
        n
        for n in names
        if f"`{n}" not in page and f"`{n}_total" not in page and f"`{n}_info" not in page
    )
    assert missing == []


def test_api_answers_are_counted_as_the_server_gives_them(kube: KubeTarget) -> None:
    from specc.metrics import AgentMetrics

    cluster = Cluster(kube.api_client())
    metrics = AgentMetrics()
    cluster.stats.observers.append(lambda v, c, s: metrics.api_answer("dev", v, c, s))
    assert cluster.get("v1", "ConfigMap", kube.namespace, "not-there") is None
    assert cluster.ping()
    from prometheus_client import generate_latest

    text = generate_latest(metrics.registry).decode()
    for verb, code in (("discovery", "200"), ("get", "404"), ("probe", "200")):
        line = f'specc_api_requests_total{{cluster="dev",code="{code}",verb="{verb}"}}'
        assert line in text, (kube.tier, verb, code)
    assert metrics.state("dev").unreachable is False
