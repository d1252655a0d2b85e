"""The agent's HTTP server under hostile clients: bounded memory, threads and time.

Requests are written on raw sockets (the cases are what well-behaved clients never
send); the agent is a real one on the API server double, and the memory test runs
``specc agent`` as a process and reads its RSS from /proc.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from specc.agent import Agent
from specc.agentserver import AgentServer, DeliveryWindow
from specc.errors import UsageError
from specc.httpserver import ServerLimits
from specc.sync.apply import read_status
from specc.sync.inventory import ApplySetParent
from specc.testing import ApiServer
from tests.test_agent import CLUSTER, ROOT, Repo, make_agent

SECRET = b"s3cret"
BODY = b'{"ref":"refs/heads/main"}'


def _sign(body: bytes, secret: bytes = SECRET) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def _raw(port: int, data: bytes, timeout: float = 5.0, half_close: bool = False) -> tuple[int, str]:
    """Send ``data`` as is (then end the stream if ``half_close``); return status and body."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            s.sendall(data)
            if half_close:
                s.shutdown(socket.SHUT_WR)
        answer = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status = re.match(rb"HTTP/1\.[01] (\d{3})", head)
    assert status, f"no HTTP answer: {answer[:200]!r}"
    return int(status.group(1)), body.decode()


def _hook(headers: dict[str, str], body: bytes = b"") -> bytes:
    lines = ["POST /hook HTTP/1.1", "Host: agent"] + [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@pytest.fixture
def served(api: ApiServer, tmp_path: Path) -> Iterator[tuple[Agent, int]]:
    repo = Repo(tmp_path)
    repo.commit("initial fleet")
    agent = make_agent(api, repo, tmp_path, webhook_secret=SECRET)
    port = agent.serve()
    assert port is not None
    try:
        yield agent, port
    finally:
        agent.shutdown_server()


# -- /hook: every bad input answered from the headers, no traceback ------------------------


@pytest.mark.parametrize(
    ("headers", "code", "words"),
    [
        ({"Content-Length": "-1", "X-Hub-Signature-256": _sign(BODY)}, 400, "whole number"),
        ({"Content-Length": "abc", "X-Hub-Signature-256": _sign(BODY)}, 400, "'abc'"),
        ({"Content-Length": "1e3", "X-Hub-Signature-256": _sign(BODY)}, 400, "whole number"),
        ({"Content-Length": "9" * 40, "X-Hub-Signature-256": _sign(BODY)}, 400, "whole number"),
        ({"X-Hub-Signature-256": _sign(BODY)}, 411, "Content-Length required"),
        ({"Transfer-Encoding": "chunked", "X-Hub-Signature-256": _sign(BODY)}, 411, "not Transfer"),
        ({"Content-Length": str(300 << 20), "X-Hub-Signature-256": _sign(BODY)}, 413, "1048576"),
        ({"Content-Length": str(len(BODY))}, 401, "X-Hub-Signature-256"),
        ({"Content-Length": str(len(BODY)), "X-Hub-Signature-256": "sha256=00"}, 401, "64 hex"),
    ],
)
def test_a_bad_hook_request_is_refused_from_its_headers(
    served: tuple[Agent, int], headers: dict[str, str], code: int, words: str
) -> None:
    agent, port = served
    # The body is never sent: an answer that waited for it would time out here.
    status, text = _raw(port, _hook(headers), timeout=3)
    assert (status, words in text) == (code, True), text
    assert not agent.trigger.is_set()


def test_conflicting_content_lengths_are_refused(served: tuple[Agent, int]) -> None:
    agent, port = served
    data = _hook({"Content-Length": "5", "X-Hub-Signature-256": _sign(BODY)})
    data = data.replace(b"Content-Length: 5", b"Content-Length: 5\r\nContent-Length: 25")
    assert _raw(port, data)[0] == 400
    assert not agent.trigger.is_set()


def test_a_body_shorter_than_its_length_is_refused(served: tuple[Agent, int]) -> None:
    agent, port = served
    data = _hook({"Content-Length": "100", "X-Hub-Signature-256": _sign(BODY)}, BODY)
    status, text = _raw(port, data, half_close=True)
    assert status == 400 and "ended before" in text
    assert not agent.trigger.is_set()


def test_a_wrong_signature_is_401_and_a_right_one_schedules_a_fetch(
    served: tuple[Agent, int],
) -> None:
    agent, port = served
    wrong = _sign(BODY, b"other")
    assert _raw(
        port, _hook({"Content-Length": str(len(BODY)), "X-Hub-Signature-256": wrong}, BODY)
    ) == (
        401,
        "bad signature\n",
    )
    assert not agent.trigger.is_set()
    headers = {
        "Content-Length": str(len(BODY)),
        "X-Hub-Signature-256": _sign(BODY),
        "X-GitHub-Delivery": "d-1",
    }
    assert _raw(port, _hook(headers, BODY))[0] == 202
    assert agent.trigger.is_set()


def test_a_replayed_delivery_is_refused_under_its_own_or_a_new_id(
    served: tuple[Agent, int],
) -> None:
    agent, port = served
    body = b'{"after":"abc"}'
    headers = {"Content-Length": str(len(body)), "X-Hub-Signature-256": _sign(body)}
    assert _raw(port, _hook({**headers, "X-GitHub-Delivery": "d-1"}, body))[0] == 202
    agent.trigger.clear()
    for delivery in ("d-1", "d-2", None):
        again = {**headers, **({"X-GitHub-Delivery": delivery} if delivery else {})}
        status, text = _raw(port, _hook(again, body))
        assert (status, "replay" in text) == (409, True), delivery
    assert not agent.trigger.is_set()
    other = b'{"after":"def"}'
    fresh = {"Content-Length": str(len(other)), "X-Hub-Signature-256": _sign(other)}
    assert _raw(port, _hook({**fresh, "X-GitHub-Delivery": "d-1"}, other))[0] == 409
    assert _raw(port, _hook({**fresh, "X-GitHub-Delivery": "d-3"}, other))[0] == 202


def test_the_delivery_window_is_bounded_in_size_and_age() -> None:
    window = DeliveryWindow(size=3, seconds=0.2)
    assert all(window.first_time(f"k{i}") for i in range(5))
    assert len(window._seen) == 3
    assert window.first_time("k0"), "pushed out by newer deliveries"
    assert not window.first_time("k4")
    time.sleep(0.25)
    assert window.first_time("k4"), "older than the window"


def test_without_a_secret_the_hook_is_off_and_says_so(api: ApiServer, tmp_path: Path) -> None:
    repo = Repo(tmp_path)
    repo.commit("initial fleet")
    agent = make_agent(api, repo, tmp_path)
    port = agent.serve()
    assert port is not None
    try:
        headers = {"Content-Length": str(len(BODY)), "X-Hub-Signature-256": _sign(BODY)}
        status, text = _raw(port, _hook(headers, BODY))
        assert status == 404 and "no webhook secret" in text and "signature" not in text
        assert not agent.trigger.is_set()
    finally:
        agent.shutdown_server()


def test_oversized_headers_are_refused(served: tuple[Agent, int]) -> None:
    _, port = served
    many = {f"X-Pad-{i}": "x" * 1000 for i in range(90)}
    status, _ = _raw(port, _hook(many))
    assert status == 431


# -- connections and time ------------------------------------------------------------------


def _server(api: ApiServer, tmp_path: Path, limits: ServerLimits) -> tuple[AgentServer, int]:
    repo = Repo(tmp_path)
    repo.commit("initial fleet")
    agent = make_agent(api, repo, tmp_path, webhook_secret=SECRET)
    server = AgentServer(agent, limits)
    return server, server.start("127.0.0.1", 0)


def _get(port: int, path: str, timeout: float = 2.0) -> int:
    return int(urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout).status)


def test_idle_connections_take_no_thread_and_are_closed_after_the_idle_timeout(
    api: ApiServer, tmp_path: Path
) -> None:
    server, port = _server(api, tmp_path, ServerLimits(workers=4, header_timeout=3.0))
    threads = threading.active_count()
    try:
        idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(400)]
        deadline = time.monotonic() + 5
        while server.connections()[0] < 400 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert server.connections() == (400, 0)
        assert threading.active_count() == threads
        started = time.monotonic()
        assert _get(port, "/healthz") == 200, "400 idle connections do not keep others out"
        assert time.monotonic() - started < 1.0
        for s in idle:
            s.settimeout(8)
        assert all(s.recv(1) == b"" for s in idle), "closed by the server"
        assert server.connections() == (0, 0)
        for s in idle:
            s.close()
    finally:
        server.stop()


def test_beyond_max_connections_the_oldest_silent_one_is_closed(
    api: ApiServer, tmp_path: Path
) -> None:
    server, port = _server(api, tmp_path, ServerLimits(max_connections=10, header_timeout=30))
    try:
        socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(15)]
        socks[0].settimeout(3)
        assert socks[0].recv(1) == b""
        deadline = time.monotonic() + 3
        while server.connections()[0] > 10 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert server.connections()[0] == 10
        assert _get(port, "/healthz") == 200
        for s in socks:
            s.close()
    finally:
        server.stop()


def test_headers_sent_byte_by_byte_take_no_worker_and_are_cut_at_the_header_timeout(
    api: ApiServer, tmp_path: Path
) -> None:
    server, port = _server(api, tmp_path, ServerLimits(workers=1, header_timeout=1.5))
    try:
        slow = [socket.create_connection(("127.0.0.1", port)) for _ in range(20)]
        for s in slow:
            s.sendall(b"GET /healthz HTTP/1.1\r\n")
        started = time.monotonic()
        cut = 0
        while time.monotonic() - started < 5 and cut < len(slow):
            for s in slow:  # a byte now and then: no read ever times out, the deadline does
                try:
                    s.sendall(b"X")
                except OSError:
                    cut += 1
            assert _get(port, "/healthz", timeout=1) == 200, "the one worker stays free"
            time.sleep(0.2)
        assert cut >= len(slow) and time.monotonic() - started < 4
        for s in slow:
            s.close()
    finally:
        server.stop()


def test_slow_bodies_are_cut_at_the_request_timeout_and_never_hold_up_a_get(
    api: ApiServer, tmp_path: Path
) -> None:
    limits = ServerLimits(body_workers=2, backlog=2, request_timeout=1.5)
    server, port = _server(api, tmp_path, limits)
    try:
        head = _hook({"Content-Length": "1000", "X-Hub-Signature-256": _sign(BODY)})
        slow = []
        for _ in range(8):  # two in service, at most two waiting, the rest refused
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(head)
            slow.append(s)
        time.sleep(0.3)
        started = time.monotonic()
        assert _get(port, "/healthz", timeout=1) == 200
        assert time.monotonic() - started < 0.5, "GETs have workers of their own"
        answers = []
        for s in slow:
            s.settimeout(8)
            got = b""
            with contextlib.suppress(OSError):
                while chunk := s.recv(4096):
                    got += chunk
            answers.append(got)
            s.close()
        busy = [a for a in answers if a.startswith(b"HTTP/1.0 503")]
        assert len(busy) >= 4 and all(a.endswith(b"busy\n") for a in busy)
        assert time.monotonic() - started < 6, "each slow body was cut at its deadline"
        assert server.connections() == (0, 0)
    finally:
        server.stop()


def test_stop_is_prompt_with_clients_in_service_and_waiting(api: ApiServer, tmp_path: Path) -> None:
    server, port = _server(api, tmp_path, ServerLimits(body_workers=1, backlog=2))
    head = _hook({"Content-Length": "1000", "X-Hub-Signature-256": _sign(BODY)})
    clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(20)]
    for c in clients:
        c.sendall(head)
    time.sleep(0.3)
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 1.5
    for c in clients + idle:
        c.close()


def test_a_busy_port_is_a_usage_error(api: ApiServer, tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        repo = Repo(tmp_path)
        repo.commit("initial fleet")
        server = AgentServer(make_agent(api, repo, tmp_path))
        with pytest.raises(
            UsageError, match=rf"--listen 127.0.0.1:{port}: cannot listen: Address already in use"
        ):
            server.start("127.0.0.1", port)
    with pytest.raises(UsageError, match="unknown address"):
        server.start("no-such-host.invalid", 0)


# -- memory: a 300 MB body and 400 idle connections against `specc agent` ------------------


def _agent_cmd(api: ApiServer, repo: Repo, tmp_path: Path) -> list[str]:
    secret = tmp_path / "secret"
    secret.write_bytes(SECRET)
    return [
        sys.executable, "-m", "specc", "agent", "--repo", str(repo.remote), "--cluster", CLUSTER,
        "--kubeconfig", str(api.kubeconfig_path), "--workdir", str(tmp_path / "w"),
        "--no-leader-election", "--interval", "600", "--resync", "600",
        "--webhook-secret-file", str(secret),
    ]  # fmt: skip


def _rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    m = re.search(r"VmRSS:\s+(\d+) kB", status)
    assert m
    return int(m.group(1)) / 1024


def _threads(pid: int) -> int:
    m = re.search(r"Threads:\s+(\d+)", Path(f"/proc/{pid}/status").read_text())
    assert m
    return int(m.group(1))


def _stream(port: int, head: bytes, total: int) -> int:
    """Send ``head`` then up to ``total`` body bytes until the server stops reading."""
    sent = 0
    chunk = b"x" * (1 << 20)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        try:
            s.sendall(head)
            while sent < total:
                s.sendall(chunk)
                sent += len(chunk)
        except OSError:
            pass
    return sent


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads RSS from /proc")
def test_hook_memory_stays_within_50_mb_under_a_300_mb_body_and_400_idle_connections(
    api: ApiServer, tmp_path: Path
) -> None:
    repo = Repo(tmp_path)
    repo.commit("initial fleet")
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    proc = subprocess.Popen(
        [*_agent_cmd(api, repo, tmp_path), "--listen", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    try:
        parent = ApplySetParent.for_cluster(CLUSTER)
        from specc.sync import Cluster

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if read_status(Cluster(api.api_client()), parent).get("lastAppliedCommit"):
                break
            time.sleep(0.1)
        else:
            raise AssertionError("the agent never applied the fleet")
        # Warm every path once (imports, buffers), then take the idle figure.
        assert _get(port, "/metrics", timeout=10) == 200
        ok = _hook({"Content-Length": str(len(BODY)), "X-Hub-Signature-256": _sign(BODY)}, BODY)
        assert _raw(port, ok)[0] == 202
        time.sleep(0.5)
        idle_rss = _rss_mb(proc.pid)
        idle_threads = _threads(proc.pid)

        peak = [idle_rss]
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                peak.append(_rss_mb(proc.pid))
                time.sleep(0.01)

        sampler = threading.Thread(target=sample)
        sampler.start()
        conns = [socket.create_connection(("127.0.0.1", port)) for _ in range(400)]
        sig = _sign(BODY)
        attacks = [
            _hook({"Content-Length": "-1", "X-Hub-Signature-256": sig}),
            _hook({"X-Hub-Signature-256": sig}),
            _hook({"Content-Length": str(1 << 20), "X-Hub-Signature-256": sig}),
        ]
        sent = [0] * len(attacks)

        def attack(i: int) -> None:
            sent[i] = _stream(port, attacks[i], 300 << 20)

        workers = [threading.Thread(target=attack, args=(i,)) for i in range(len(attacks))]
        for w in workers:
            w.start()
        for w in workers:
            w.join(timeout=60)
        threads_under_load = _threads(proc.pid)
        assert _get(port, "/healthz", timeout=5) == 200
        done.set()
        sampler.join()
        for c in conns:
            c.close()
        growth = max(peak) - idle_rss
        print(
            f"idle {idle_rss:.1f} MB, peak {max(peak):.1f} MB (+{growth:.1f} MB); "
            f"threads {idle_threads} idle, {threads_under_load} under load; "
            f"bytes accepted before the answer: {[s >> 20 for s in sent]} MiB"
        )
        assert growth < 50, f"RSS grew by {growth:.1f} MB"
        assert threads_under_load <= idle_threads + 2
        assert all(s < (300 << 20) for s in sent), "the server read a 300 MB body to its end"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.stderr is not None
    assert "Traceback" not in proc.stderr.read().decode()
