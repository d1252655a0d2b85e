"""Two API server doubles behind one multi-context kubeconfig: what a new user's laptop holds.

``multi.yaml`` has the contexts ``kind-dev`` (the dev double) and ``staging`` (the
staging double), the names the example fleet's ``connection.context`` uses, plus
``kind-other`` (the dev double again, under a name the fleet does not know). Its
current-context is chosen per test: following it is what sent staging into dev.
``dev.yaml`` holds the dev double alone, as a one-cluster kubeconfig would.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from specc.cli import cli
from specc.testing import ApiServer


@dataclass
class Clusters:
    dev: ApiServer
    staging: ApiServer
    multi: Path
    dev_only: Path

    def use_current(self, context: str) -> None:
        """Set multi.yaml's current-context (the state a `kubectl config use-context` leaves)."""
        config = json.loads(self.multi.read_text())
        config["current-context"] = context
        self.multi.write_text(json.dumps(config, indent=2))

    def clear_logs(self) -> None:
        self.dev.log.clear()
        self.staging.log.clear()


def kubeconfig(path: Path, contexts: dict[str, ApiServer], current: str) -> Path:
    """Write a kubeconfig with one cluster, user and context per entry of ``contexts``."""
    config: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": n, "cluster": {"server": s.url}} for n, s in contexts.items()],
        "users": [{"name": n, "user": {"token": "specc-double"}} for n in contexts],
        "contexts": [{"name": n, "context": {"cluster": n, "user": n}} for n in contexts],
        "current-context": current,
    }
    path.write_text(json.dumps(config, indent=2))
    return path


def two_clusters(tmp_path: Path) -> Iterator[Clusters]:
    """Yield a dev and a staging double with multi.yaml and dev.yaml pointing at them."""
    with ApiServer() as dev, ApiServer() as staging:
        multi = kubeconfig(
            tmp_path / "multi.yaml",
            {"kind-dev": dev, "staging": staging, "kind-other": dev},
            "kind-dev",
        )
        dev_only = kubeconfig(tmp_path / "dev.yaml", {"kind-dev": dev}, "kind-dev")
        yield Clusters(dev, staging, multi, dev_only)


def run(*args: str, env: dict[str, str | None] | None = None, home: Path | None = None) -> Result:
    """Run the CLI with KUBECONFIG unset (unless given) and HOME at ``home``."""
    environment: dict[str, str | None] = {"KUBECONFIG": None, "KUBERNETES_SERVICE_HOST": None}
    if home is not None:
        environment["HOME"] = str(home)
    environment.update(env or {})
    result = CliRunner().invoke(cli, list(args), env=environment)
    # A crash would also exit 1 (or 2 under click); only a deliberate exit counts.
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        args,
        result.exc_info,
    )
    return result


def target_line(result: Result) -> str:
    """Return the first stderr line: which cluster, context and server a command used."""
    return result.stderr.splitlines()[0] if result.stderr else ""


@contextmanager
def silent_server() -> Iterator[str]:
    """Yield the URL of a server that accepts connections and never answers."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            held.append(conn)  # read nothing, answer nothing, keep it open

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in held:
            conn.close()
        listener.close()


def closed_port_url() -> str:
    """Return the URL of a local port nothing listens on (connections are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def kubeconfig_for(path: Path, server: str, context: str = "kind-dev") -> Path:
    """Write a one-context kubeconfig for a server URL that is not a double."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": context, "cluster": {"server": server}}],
        "users": [{"name": context, "user": {"token": "t"}}],
        "contexts": [{"name": context, "context": {"cluster": context, "user": context}}],
        "current-context": context,
    }
    path.write_text(json.dumps(config))
    return path
