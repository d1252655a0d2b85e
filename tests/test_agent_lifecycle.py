"""The agent process: SIGTERM, start-up failures and where it keeps its files."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from specc.sync import Cluster
from specc.testing import ApiServer
from tests.test_agent import CLUSTER, ROOT, Repo, make_agent, status


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    r = Repo(tmp_path)
    r.commit("initial fleet")
    return r


def _agent_cmd(api: ApiServer, repo: Repo, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "specc", "agent", "--repo", str(repo.remote),
        "--kubeconfig", str(api.kubeconfig_path), *extra,
    ]  # fmt: skip


def _wait_for(check: Callable[[], object], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout:g} s")
        time.sleep(0.05)


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []

    def start(cmd: list[str], **kw: object) -> subprocess.Popen[bytes]:
        env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=kw.pop("cwd", ROOT),  # type: ignore[arg-type]
            env=env,
        )
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def _lease_holder(api: ApiServer) -> str:
    lease = Cluster(api.api_client()).request(
        "get",
        "GET",
        f"/apis/coordination.k8s.io/v1/namespaces/specc-system/leases/specc-agent-{CLUSTER}",
    )
    return str((lease.get("spec") or {}).get("holderIdentity") or "")


def test_sigterm_ends_an_idle_agent_within_two_seconds_and_releases_the_lease(
    api: ApiServer, repo: Repo, tmp_path: Path, spawn: Callable[..., subprocess.Popen[bytes]]
) -> None:
    proc = spawn(
        _agent_cmd(
            api,
            repo,
            "--cluster",
            CLUSTER,
            "--listen",
            "127.0.0.1:0",
            "--interval",
            "600",
            "--resync",
            "600",
        )
    )
    _wait_for(lambda: status(api).get("lastResult") == "applied")
    _wait_for(lambda: _lease_holder(api) != "")
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    took = time.monotonic() - started
    assert proc.returncode == 0, err.decode()[-2000:]
    assert took < 2.0, f"exited {took:.2f} s after SIGTERM"
    assert _lease_holder(api) == ""  # released: a standby takes over at once
    assert b"Traceback" not in err


def test_sigterm_while_the_server_is_unreachable_ends_the_agent_within_two_seconds(
    api: ApiServer, repo: Repo, spawn: Callable[..., subprocess.Popen[bytes]]
) -> None:
    proc = spawn(
        _agent_cmd(
            api,
            repo,
            "--cluster",
            CLUSTER,
            "--listen",
            "127.0.0.1:0",
            "--lease-duration",
            "1",
            "--interval",
            "600",
            "--resync",
            "600",
        )
    )
    _wait_for(lambda: status(api).get("lastResult") == "applied")
    api.faults.add("/api*", status=503)  # every request now retried with backoff
    # The lease renewal is retrying (its budget is a minute) when SIGTERM comes.
    _wait_for(lambda: api.log.count("fault") >= 3)
    proc.send_signal(signal.SIGTERM)
    started = time.monotonic()
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err.decode()[-2000:]
    assert time.monotonic() - started < 2.0
    assert b"Traceback" not in err


def test_an_unknown_cluster_at_start_is_a_recorded_refusal_not_a_crash(
    api: ApiServer, repo: Repo, spawn: Callable[..., subprocess.Popen[bytes]]
) -> None:
    proc = spawn(
        _agent_cmd(
            api,
            repo,
            "--cluster",
            "nope",
            "--listen",
            "127.0.0.1:0",
            "--no-leader-election",
            "--interval",
            "600",
        )
    )
    from specc.sync.apply import read_status
    from specc.sync.inventory import ApplySetParent

    parent = ApplySetParent.for_cluster("nope")
    _wait_for(lambda: read_status(Cluster(api.api_client()), parent).get("lastResult"))
    data = read_status(Cluster(api.api_client()), parent)
    assert data["lastResult"] == "cluster-unknown"
    assert "has no cluster 'nope'" in data["lastError"]
    assert proc.poll() is None  # still running, waiting for a commit that has the cluster
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert b"Traceback" not in err and b"commit refused" in err


def test_a_busy_port_is_a_clean_usage_error(
    api: ApiServer, repo: Repo, spawn: Callable[..., subprocess.Popen[bytes]]
) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        proc = spawn(_agent_cmd(api, repo, "--cluster", CLUSTER, "--listen", f"127.0.0.1:{port}"))
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2
    text = err.decode()
    assert f"--listen 127.0.0.1:{port}: cannot listen: " in text
    assert "already in use" in text.lower()
    assert "Traceback" not in text
    assert api.log.count("apply") == 0


@pytest.mark.parametrize("listen", ["localhost", "8080", "::1:8080", "host:port", "h:70000"])
def test_a_bad_listen_address_is_a_clean_usage_error(
    api: ApiServer, repo: Repo, spawn: Callable[..., subprocess.Popen[bytes]], listen: str
) -> None:
    proc = spawn(_agent_cmd(api, repo, "--cluster", CLUSTER, "--listen", listen))
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2
    text = err.decode()
    assert f"Invalid value for '--listen': {listen!r} is not HOST:PORT" in text
    assert "Traceback" not in text


def test_the_listen_address_forms() -> None:
    from specc.cli import _listen_address

    assert _listen_address("0.0.0.0:8080") == ("0.0.0.0", 8080)
    assert _listen_address(":9090") == ("0.0.0.0", 9090)
    assert _listen_address("[::1]:8080") == ("::1", 8080)
    assert _listen_address("localhost:0") == ("localhost", 0)


def test_the_work_directory_defaults_to_the_cache_not_the_current_directory(
    api: ApiServer, repo: Repo, tmp_path: Path, spawn: Callable[..., subprocess.Popen[bytes]]
) -> None:
    here = repo.work  # run from a fleet checkout, as an operator trying it out would
    before = sorted(p.name for p in here.iterdir())
    proc = spawn(
        _agent_cmd(
            api,
            repo,
            "--cluster",
            CLUSTER,
            "--listen",
            "127.0.0.1:0",
            "--no-leader-election",
            "--interval",
            "600",
        ),
        cwd=here,
    )
    _wait_for(lambda: status(api).get("lastResult") == "applied")
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=10)
    assert sorted(p.name for p in here.iterdir()) == before
    assert (tmp_path / "cache/specc/agent/repo/HEAD").is_file()


def test_a_stop_between_the_loops_read_and_its_clear_still_ends_the_wait(
    api: ApiServer, repo: Repo, tmp_path: Path
) -> None:
    # SIGTERM can land between any two statements of the loop. Here it lands inside the
    # clear of the loop's wake (as if between reading stop and clearing): the loop must
    # still end at once, not sleep out --interval.
    agent = make_agent(api, repo, tmp_path, interval=600.0, resync=600.0)
    clear = agent.trigger.clear

    def stop_then_clear() -> None:
        agent.stop.set()
        clear()

    agent.trigger.clear = stop_then_clear  # type: ignore[method-assign]
    thread = threading.Thread(target=agent.run, daemon=True)
    started = time.monotonic()
    thread.start()
    thread.join(timeout=10)
    assert not thread.is_alive(), "the loop slept through a stop"
    assert time.monotonic() - started < 2.0
