"""The agent's HTTP side: /metrics, /healthz, /readyz and the POST /hook webhook.

Kept apart from the reconcile loop (specc.agent): the server only reads the agent's
state and sets its trigger.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from specc.agent import Agent


class AgentServer:
    """The HTTP endpoints of one agent, served from a thread of their own."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self._server: ThreadingHTTPServer | None = None

    @property
    def port(self) -> int | None:
        return int(self._server.server_address[1]) if self._server else None

    def start(self, host: str, port: int) -> int:
        """Bind ``host:port`` and serve; return the bound port."""
        if self._server is not None:
            return int(self._server.server_address[1])
        agent = self.agent

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def _reply(
                self, code: int, body: bytes, ctype: str = "text/plain; charset=utf-8"
            ) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                if self.path == "/metrics":
                    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

                    self._reply(200, generate_latest(agent.metrics.registry), CONTENT_TYPE_LATEST)
                elif self.path == "/healthz":
                    self._reply(200, b"ok\n")
                elif self.path == "/readyz":
                    ok = agent.ready.is_set()
                    self._reply(200 if ok else 503, b"ok\n" if ok else b"not ready\n")
                else:
                    self._reply(404, b"not found\n")

            def do_POST(self) -> None:
                if self.path != "/hook":
                    self._reply(404, b"not found\n")
                    return
                length = min(int(self.headers.get("Content-Length") or 0), 1 << 20)
                body = self.rfile.read(length)
                if not verify_signature(
                    agent.options.webhook_secret, body, self.headers.get("X-Hub-Signature-256")
                ):
                    self._reply(401, b"bad signature\n")
                    return
                agent.trigger.set()
                self._reply(202, b"fetch scheduled\n")

        self._server = ThreadingHTTPServer((host, port), Handler)
        threading.Thread(target=self._server.serve_forever, name="specc-http", daemon=True).start()
        return int(self._server.server_address[1])

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def verify_signature(secret: bytes | None, body: bytes, header: str | None) -> bool:
    """Return whether ``header`` is ``sha256=<hex HMAC of body>`` under ``secret`` (GitHub's scheme)."""
    if not secret or not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(secret, body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header[len("sha256=") :])
