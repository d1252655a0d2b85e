"""Run etcd, kube-apiserver and kube-controller-manager on 127.0.0.1 for tests.

The API server runs as a production one would, in the parts specc meets: TLS with a
CA of its own, client-certificate authentication, ``--authorization-mode=Node,RBAC``,
ServiceAccount token signing, and the default admission chain (PodSecurity included).
There is no scheduler and no kubelet: pods are created but never run.

Every child process is asked to die with its parent (Linux ``PR_SET_PDEATHSIG``), so a
test run that crashes, or is killed, leaves no etcd or API server behind; a normal stop
terminates them in reverse order and removes the working directory.
"""

from __future__ import annotations

import atexit
import base64
import ctypes
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from specc.testing.kube.binaries import Build, BuildUnavailable
from specc.testing.kube.pki import Pki, make_pki

#: Room for 65,534 Services: a /24 is full after 254, and the bench applies 1,000.
SERVICE_CIDR = "10.0.0.0/16"
STATE_FILE = "state.json"
#: Metadata (user, verb, object, decision) of ServiceAccounts' requests, except the
#: controllers' own (kube-system), which would fill the log.
AUDIT_POLICY: dict[str, Any] = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived"],
    "rules": [
        {"level": "None", "userGroups": ["system:serviceaccounts:kube-system"]},
        {"level": "Metadata", "userGroups": ["system:serviceaccounts"]},
        {"level": "None"},
    ],
}


@dataclass(frozen=True)
class ControlPlaneOptions:
    """What to start and how long to wait for it."""

    controller_manager: bool = True
    startup_timeout: float = 120.0
    #: Extra ``--flag=value`` arguments for kube-apiserver (tests of specific features).
    apiserver_args: tuple[str, ...] = ()
    #: Keep the working directory (logs, etcd data) after stop, for debugging.
    keep: bool = False
    #: Write an audit log (:attr:`ControlPlane.audit_log`) of every request made by a
    #: ServiceAccount outside kube-system: what least-privilege tests read.
    audit: bool = True
    #: Users whose requests are audited too (``specc-admin``: the admin kubeconfig's).
    audit_users: tuple[str, ...] = ()


def runs_root() -> Path:
    """Return the directory holding one working directory per running control plane."""
    return Path(tempfile.gettempdir()) / f"specc-kube-{os.getuid()}"


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_runs() -> None:
    """Remove working directories whose owning process is gone (a killed test run)."""
    root = runs_root()
    if not root.is_dir():
        return
    for run in root.iterdir():
        try:
            owner = int(json.loads((run / STATE_FILE).read_text())["owner"])
        except (OSError, ValueError, KeyError, TypeError):
            # No state yet: a run being set up, unless it is old.
            if time.time() - run.stat().st_mtime < 600:
                continue
        else:
            if _pid_alive(owner):
                continue
        shutil.rmtree(run, ignore_errors=True)


def _die_with_parent() -> None:
    """In the child, before exec: get SIGKILL when the process that started us ends."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return  # not Linux: rely on stop()
    # The parent may have died between fork and prctl; then nobody would stop us.
    if os.getppid() == 1:
        os._exit(1)


@dataclass
class _Process:
    name: str
    args: list[str]
    log_path: Path
    popen: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = field(default=None, repr=False)

    def start(self) -> None:
        self._log = self.log_path.open("ab")
        self.popen = subprocess.Popen(
            self.args,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
            start_new_session=True,  # Ctrl-C in a terminal reaches us, not them
        )

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 10.0) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        if self._log is not None:
            self._log.close()
            self._log = None


class ControlPlaneError(BuildUnavailable):
    """A component did not start; the message carries the tail of its log."""


class ControlPlane:
    """A running etcd + kube-apiserver (+ kube-controller-manager) on free loopback ports."""

    def __init__(self, build: Build, options: ControlPlaneOptions | None = None) -> None:
        self.build = build
        self.options = options or ControlPlaneOptions()
        self.workdir: Path | None = None
        self.pki: Pki | None = None
        self.url = ""
        self.started_seconds = 0.0
        self._processes: list[_Process] = []
        self._ssl: ssl.SSLContext | None = None

    # -- lifecycle --------------------------------------------------------------

    def __enter__(self) -> ControlPlane:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> ControlPlane:
        """Start every component and wait until the API server is ready; return self."""
        began = time.monotonic()
        remove_stale_runs()
        root = runs_root()
        root.mkdir(parents=True, exist_ok=True)
        self.workdir = Path(tempfile.mkdtemp(prefix="run-", dir=root))
        atexit.register(self.stop)
        try:
            self.pki = make_pki(self.workdir / "pki")
            self._ssl = self._client_context()
            self._start_etcd()
            self._start_apiserver()
            self.write_kubeconfig(self.kubeconfig_path)
            if self.options.controller_manager:
                self._start_controller_manager()
        except BaseException:
            self.stop()
            raise
        self.started_seconds = round(time.monotonic() - began, 2)
        self.write_state()
        return self

    def stop(self) -> None:
        """Stop the components (newest first) and remove the working directory."""
        for process in reversed(self._processes):
            process.stop()
        self._processes = []
        atexit.unregister(self.stop)
        if self.workdir is not None and not self.options.keep:
            shutil.rmtree(self.workdir, ignore_errors=True)
        self.workdir = None

    def write_state(self, **extra: Any) -> None:
        assert self.workdir is not None
        state = {
            "owner": os.getpid(),
            "url": self.url,
            "version": self.build.kubernetes,
            "pids": {p.name: p.popen.pid for p in self._processes if p.popen},
            **extra,
        }
        (self.workdir / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n")

    # -- components -------------------------------------------------------------

    def _spawn(self, name: str, args: list[str]) -> _Process:
        assert self.workdir is not None
        process = _Process(name, args, self.workdir / f"{name}.log")
        self._processes.append(process)
        process.start()
        return process

    def _wait(self, process: _Process, ready: Any, what: str) -> None:
        deadline = time.monotonic() + self.options.startup_timeout
        while time.monotonic() < deadline:
            if not process.running():
                raise ControlPlaneError(
                    f"{process.name} exited while starting:\n{process.log_tail()}"
                )
            if ready():
                return
            time.sleep(0.05)
        raise ControlPlaneError(
            f"{process.name}: {what} not ready after {self.options.startup_timeout:.0f} s:\n"
            f"{process.log_tail()}"
        )

    def _start_etcd(self) -> None:
        assert self.workdir is not None
        client, peer = free_port(), free_port()
        self.etcd_url = f"http://127.0.0.1:{client}"
        process = self._spawn(
            "etcd",
            [
                str(self.build.binary("etcd")),
                "--name=default",
                f"--data-dir={self.workdir / 'etcd'}",
                f"--listen-client-urls={self.etcd_url}",
                f"--advertise-client-urls={self.etcd_url}",
                f"--listen-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-cluster=default=http://127.0.0.1:{peer}",
                # Test data: durability buys nothing and fsync costs most of a write.
                "--unsafe-no-fsync",
                "--log-level=warn",
            ],
        )
        self._wait(process, lambda: self._http_ok(f"{self.etcd_url}/health"), "/health")

    def _start_apiserver(self) -> None:
        assert self.pki is not None and self.workdir is not None
        port = free_port()
        self.url = f"https://127.0.0.1:{port}"
        pki = self.pki
        audit: list[str] = []
        if self.options.audit:
            policy = self.workdir / "audit-policy.json"
            rules = list(AUDIT_POLICY["rules"])
            if self.options.audit_users:
                rules.insert(0, {"level": "Metadata", "users": list(self.options.audit_users)})
            policy.write_text(json.dumps({**AUDIT_POLICY, "rules": rules}))
            audit = [
                f"--audit-policy-file={policy}",
                f"--audit-log-path={self.audit_log}",
                "--audit-log-mode=blocking",
            ]
        process = self._spawn(
            "kube-apiserver",
            [
                str(self.build.binary("kube-apiserver")),
                f"--etcd-servers={self.etcd_url}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={port}",
                f"--cert-dir={self.workdir / 'apiserver-certs'}",
                f"--tls-cert-file={pki.server_cert}",
                f"--tls-private-key-file={pki.server_key}",
                f"--client-ca-file={pki.ca_cert}",
                "--authorization-mode=Node,RBAC",
                # PodSecurity is in the default set already; naming it keeps it on if
                # the defaults change.
                "--enable-admission-plugins=PodSecurity,NamespaceLifecycle,ServiceAccount",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={pki.service_account_key}",
                f"--service-account-signing-key-file={pki.service_account_key}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--allow-privileged=true",
                "--profiling=false",
                "--v=1",
                *audit,
                *self.options.apiserver_args,
            ],
        )
        self._wait(process, lambda: self._https_ok(f"{self.url}/readyz"), "/readyz")

    def _start_controller_manager(self) -> None:
        assert self.pki is not None and self.workdir is not None
        kubeconfig = self.workdir / "controller-manager.kubeconfig"
        self.write_kubeconfig(kubeconfig, client="controller-manager")
        port = free_port()
        pki = self.pki
        process = self._spawn(
            "kube-controller-manager",
            [
                str(self.build.binary("kube-controller-manager")),
                f"--kubeconfig={kubeconfig}",
                f"--authentication-kubeconfig={kubeconfig}",
                f"--authorization-kubeconfig={kubeconfig}",
                "--bind-address=127.0.0.1",
                f"--secure-port={port}",
                f"--cert-dir={self.workdir / 'controller-manager-certs'}",
                "--leader-elect=false",
                # Each controller acts as its own ServiceAccount with its bootstrap role,
                # as in a kubeadm cluster, so RBAC is exercised for them too.
                "--use-service-account-credentials=true",
                f"--service-account-private-key-file={pki.service_account_key}",
                f"--root-ca-file={pki.ca_cert}",
                f"--cluster-signing-cert-file={pki.ca_cert}",
                f"--cluster-signing-key-file={pki.ca_key}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--v=1",
            ],
        )
        self._wait(
            process,
            lambda: self._https_ok(f"https://127.0.0.1:{port}/healthz", verify=False),
            "/healthz",
        )

    # -- probes -----------------------------------------------------------------

    def _client_context(self) -> ssl.SSLContext:
        assert self.pki is not None
        context = ssl.create_default_context(cafile=str(self.pki.ca_cert))
        cert, key = self.pki.client("admin")
        context.load_cert_chain(str(cert), str(key))
        return context

    @staticmethod
    def _http_ok(url: str) -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return bool(response.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    def _https_ok(self, url: str, verify: bool = True) -> bool:
        context = self._ssl
        if not verify:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        try:
            with urllib.request.urlopen(url, timeout=2, context=context) as response:
                return bool(response.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    # -- clients ----------------------------------------------------------------

    @property
    def audit_log(self) -> Path:
        """Return the audit log (JSON lines; see :data:`AUDIT_POLICY`)."""
        if self.workdir is None:
            raise ControlPlaneError("the control plane is not running")
        return self.workdir / "audit.log"

    def audit_events(self, user: str) -> list[dict[str, Any]]:
        """Return the audit events of ``user`` so far, oldest first."""
        try:
            lines = self.audit_log.read_text().splitlines()
        except FileNotFoundError:
            return []
        events = [json.loads(line) for line in lines if line.strip()]
        return [e for e in events if (e.get("user") or {}).get("username") == user]

    @property
    def kubeconfig_path(self) -> Path:
        """Return the admin kubeconfig of this control plane."""
        if self.workdir is None:
            raise ControlPlaneError("the control plane is not running")
        return self.workdir / "admin.kubeconfig"

    def kubeconfig(self, client: str = "admin", token: str | None = None) -> dict[str, Any]:
        """Return a kubeconfig for a client certificate of :mod:`pki`, or for a bearer token."""
        assert self.pki is not None

        def data(path: Path) -> str:
            return base64.b64encode(path.read_bytes()).decode()

        user: dict[str, Any]
        if token is not None:
            user = {"token": token}
        else:
            cert, key = self.pki.client(client)
            user = {"client-certificate-data": data(cert), "client-key-data": data(key)}
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "specc-kube",
                    "cluster": {
                        "server": self.url,
                        "certificate-authority-data": data(self.pki.ca_cert),
                    },
                }
            ],
            "users": [{"name": client, "user": user}],
            "contexts": [
                {"name": "specc-kube", "context": {"cluster": "specc-kube", "user": client}}
            ],
            "current-context": "specc-kube",
        }

    def write_kubeconfig(
        self, path: str | os.PathLike[str], client: str = "admin", token: str | None = None
    ) -> Path:
        """Write :meth:`kubeconfig` to ``path`` (mode 0600); return the path."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(self.kubeconfig(client, token), out, indent=2)
        return target

    def api_client(self) -> Any:
        """Return a ``kubernetes.client.ApiClient`` with admin rights."""
        from kubernetes import config

        factory: Any = config.new_client_from_config
        return factory(config_file=str(self.kubeconfig_path))


def main_stderr(text: str) -> None:
    """Print a line for a person on stderr."""
    print(text, file=sys.stderr, flush=True)
