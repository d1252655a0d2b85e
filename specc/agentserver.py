"""The agent's HTTP side: /metrics, /healthz, /readyz and the POST /hook webhook.

Kept apart from the reconcile loop (specc.agent): the server only reads the agent's
state and sets its trigger. It is open to the network (``--listen`` defaults to
0.0.0.0) and unauthenticated until a hook's signature is checked, so every cost a
client can cause is bounded (:mod:`specc.httpserver`): connections, time, header and
body bytes. A hook is answered before its body is read whenever the headers already
decide (no secret, a bad length, no signature).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import threading
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from specc.httpserver import BoundedHTTPServer, BoundedRequestHandler, ServerLimits

if TYPE_CHECKING:
    from specc.agent import Agent

#: The largest hook body read; GitHub caps payloads at 25 MB but a push event is a few KB.
MAX_BODY = 1 << 20
_LENGTH = re.compile(r"[0-9]{1,18}")
_SIGNATURE = re.compile(r"sha256=[0-9a-f]{64}")
#: A step (fetch, render, plan, apply) running longer than this fails /healthz: every
#: request in it has a timeout and a retry budget, so only a hang gets this far.
STEP_DEADLINE = 600.0
#: With no API answer for this long, /readyz's check sends one GET /version itself.
PROBE_AFTER = 10.0


class DeliveryWindow:
    """The deliveries seen lately, to refuse one sent again.

    GitHub's HMAC covers the body only, so a replay can be re-sent under a new
    ``X-GitHub-Delivery`` id: both the id and the body's signature are remembered.
    Memory is bounded: at most ``size`` entries, none older than ``seconds``. A replay
    older than that is accepted; all it can do is schedule a fetch, which the agent
    does every ``--interval`` anyway.
    """

    def __init__(self, size: int = 4096, seconds: float = 3600.0) -> None:
        self.size = size
        self.seconds = seconds
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def first_time(self, *keys: str) -> bool:
        """Record ``keys``; return False if any was seen within the window."""
        now = time.monotonic()
        with self._lock:
            while self._seen:
                oldest, at = next(iter(self._seen.items()))
                if now - at < self.seconds and len(self._seen) <= self.size:
                    break
                del self._seen[oldest]
            if any(k in self._seen for k in keys):
                return False
            for k in keys:
                self._seen[k] = now
            while len(self._seen) > self.size:
                self._seen.popitem(last=False)
            return True


class AgentServer:
    """The HTTP endpoints of one agent, served from threads of their own."""

    def __init__(
        self,
        agent: Agent,
        limits: ServerLimits | None = None,
        max_body: int = MAX_BODY,
    ) -> None:
        self.agent = agent
        self.limits = limits or ServerLimits()
        self.max_body = max_body
        self.deliveries = DeliveryWindow()
        self.step_deadline = STEP_DEADLINE
        self.probe_after = PROBE_AFTER
        self._server: BoundedHTTPServer | None = None
        #: Whether the API server answered the latest request, and when (monotonic).
        self._answered: tuple[bool, float] | None = None
        self._prober: threading.Thread | None = None
        self._stopping = threading.Event()
        agent.cluster.stats.observers.append(self._observe)

    @property
    def port(self) -> int | None:
        return self._server.port if self._server else None

    def start(self, host: str, port: int) -> int:
        """Bind ``host:port`` and serve; return the bound port.

        A port that cannot be bound (in use, privileged, unknown host) is a UsageError.
        """
        if self._server is None:
            self._server = BoundedHTTPServer(host, port, self._handler(), self.limits)
            self._server.start()
            self._stopping.clear()
            self._prober = threading.Thread(target=self._probe, name="specc-probe", daemon=True)
            self._prober.start()
        return self._server.port

    def stop(self) -> None:
        self._stopping.set()
        if self._prober is not None:
            self._prober.join(timeout=0.1)  # a probe in flight ends by its own timeout
            self._prober = None
        if self._server is not None:
            self._server.stop()
            self._server = None

    # -- health --------------------------------------------------------------------------

    def _observe(self, verb: str, code: str, seconds: float) -> None:
        self._answered = (code != "error", time.monotonic())

    def _probe(self) -> None:
        """Ask the API server whether it is there when nothing else has lately."""
        while not self._stopping.wait(1.0):
            last = self._answered
            if last is None or time.monotonic() - last[1] >= self.probe_after:
                self.agent.cluster.ping(timeout=2.0)

    def loop_problem(self) -> str | None:
        """Return why the reconcile loop is not progressing, or None."""
        agent, now = self.agent, time.monotonic()
        if not agent._running:
            return "the reconcile loop has ended" if agent._beat else None
        if agent._waiting_until:
            late = now - agent._waiting_until
            return (
                f"the loop's wait ended {late:.0f} s ago and it did not wake" if late > 30 else None
            )
        running = now - agent._beat
        if running > self.step_deadline:
            return (
                f"one step has been running for {running:.0f} s "
                f"(more than {self.step_deadline:.0f} s)"
            )
        return None

    def readiness(self) -> list[tuple[str, str | None]]:
        """Return each readiness check and its failure (None: passed)."""
        agent = self.agent
        answered = self._answered
        api = None
        if answered is not None and not answered[0]:
            api = f"the API server {agent.cluster.server or ''} did not answer the last request"
        leader = None
        if agent.options.leader_election and not agent.leading.is_set():
            leader = f"not leading: this replica does not hold the Lease specc-agent-{agent.options.cluster}"
        return [
            ("loop", self.loop_problem()),
            ("api", api),
            ("leader", leader),
            ("started", None if agent.ready.is_set() else "no commit applied yet"),
        ]

    def connections(self) -> tuple[int, int]:
        """Return (idle, in service) connection counts."""
        return self._server.connections() if self._server else (0, 0)

    # -- requests ------------------------------------------------------------------------

    def _handler(self) -> type[BoundedRequestHandler]:
        served = self

        class Handler(BoundedRequestHandler):
            server_version = "specc-agent"

            def _reply(
                self, code: int, body: bytes, ctype: str = "text/plain; charset=utf-8"
            ) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                code, ctype, body = served.get(self.path)
                self._reply(code, body, ctype)

            def do_POST(self) -> None:
                code, body = served.post(self)
                if self.path == "/hook":
                    served.agent.metrics.hook_requests.labels(str(code)).inc()
                self._reply(code, body)

        return Handler

    def get(self, target: str) -> tuple[int, str, bytes]:
        text = "text/plain; charset=utf-8"
        url = urlsplit(target)
        if url.path == "/metrics":
            from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

            return 200, CONTENT_TYPE_LATEST, generate_latest(self.agent.metrics.registry)
        if url.path in ("/healthz", "/readyz"):
            checks = [("loop", self.loop_problem())] if url.path == "/healthz" else self.readiness()
            # kube-apiserver's form: ?exclude=NAME skips a check (a standby replica's
            # readiness probe excludes "leader"), one line per check.
            skip = set(parse_qs(url.query).get("exclude", []))
            lines = [
                f"[-]{name} failed: {problem}" if problem else f"[+]{name} ok"
                for name, problem in checks
                if name not in skip
            ]
            ok = not any(problem for name, problem in checks if name not in skip)
            word = url.path[1:]
            lines.append(f"{word} check passed" if ok else f"{word} check failed")
            return (200 if ok else 503), text, ("\n".join(lines) + "\n").encode()
        return 404, text, b"not found\n"

    def post(self, request: Any) -> tuple[int, bytes]:
        """Answer one POST; ``request`` is the handler (headers, reader, rfile)."""
        if request.path != "/hook":
            return 404, b"not found\n"
        secret = self.agent.options.webhook_secret
        if not secret:
            return 404, (
                b"POST /hook is off: this agent has no webhook secret (--webhook-secret-file)\n"
            )
        headers = request.headers
        if headers.get("Transfer-Encoding"):
            return 411, b"send the body with a Content-Length, not Transfer-Encoding\n"
        lengths = headers.get_all("Content-Length") or []
        if not lengths:
            return 411, b"Content-Length required\n"
        if len(set(lengths)) > 1 or not _LENGTH.fullmatch(lengths[0].strip()):
            shown = ", ".join(lengths)[:40]
            return 400, f"Content-Length must be one whole number, got {shown!r}\n".encode()
        length = int(lengths[0])
        if length > self.max_body:
            return 413, (
                f"a body of {length} bytes is more than the {self.max_body} POST /hook reads\n"
            ).encode()
        signature = headers.get("X-Hub-Signature-256") or ""
        if not _SIGNATURE.fullmatch(signature):
            return 401, b"X-Hub-Signature-256: sha256=<64 hex digits> required\n"
        body = _read(request, length)
        if body is None:
            return 400, f"the body ended before its Content-Length of {length} bytes\n".encode()
        if not verify_signature(secret, body, signature):
            return 401, b"bad signature\n"
        agent = self.agent
        if agent.options.leader_election and not agent.leading.is_set():
            # Only the leader fetches: a 2xx here would lose the delivery without a trace,
            # and it is not recorded, so a redelivery to the leader is not a replay.
            return 503, b"this replica is not leading; the leader fetches within --interval\n"
        delivery = (headers.get("X-GitHub-Delivery") or "")[:100]
        keys = [f"sig:{signature}"] + ([f"id:{delivery}"] if delivery else [])
        if not self.deliveries.first_time(*keys):
            return 409, b"this delivery was received before; a replay is not acted on\n"
        agent.trigger.set()
        return 202, b"fetch scheduled\n"


def _read(request: Any, length: int) -> bytes | None:
    """Return exactly ``length`` body bytes, or None if the client stopped sending."""
    # What the reader buffered past the headers is body too; raw reads stop at length.
    request.reader.budget = length
    chunks, got = [], 0
    while got < length:
        chunk = request.rfile.read1(length - got)
        if not chunk:
            return None
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def verify_signature(secret: bytes | None, body: bytes, header: str | None) -> bool:
    """Return whether ``header`` is ``sha256=<hex HMAC of body>`` under ``secret`` (GitHub's scheme)."""
    if not secret or not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(secret, body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header[len("sha256=") :])
