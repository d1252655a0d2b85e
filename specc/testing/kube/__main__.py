"""``python -m specc.testing.kube build | start | stop | run``: the real control plane by hand.

``start`` returns once the API server is ready and leaves a supervisor process running in
the background; ``stop`` ends it (and, with it, etcd, the API server and the controller
manager). ``run`` is the same in the foreground, until Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from specc.testing.kube.binaries import (
    ETCD_VERSION,
    KUBERNETES_VERSION,
    BuildUnavailable,
    build,
    cached,
)
from specc.testing.kube.controlplane import (
    STATE_FILE,
    ControlPlane,
    ControlPlaneOptions,
    remove_stale_runs,
    runs_root,
)


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _build(version: str, etcd: str, force: bool = False) -> int:
    found = None if force else cached(version)
    if found is None:
        _say(f"building kube-apiserver, kube-controller-manager {version} and etcd {etcd}")
        _say("(Go module proxy; about 6 minutes and 3.5 GB of Go caches when cold)")
        found = build(version, etcd, force=force)
        _say(f"built in {found.seconds:.0f} s")
    print(Path(found.directory) / "bin")
    return 0


def _run(args: argparse.Namespace, ready_fd: int | None) -> int:
    """Run a control plane until SIGTERM or SIGINT; report readiness on ``ready_fd``."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    kubeconfig = Path(args.kubeconfig).resolve()
    try:
        found = cached(args.version) or build(args.version, args.etcd_version)
        plane = ControlPlane(found, ControlPlaneOptions(keep=args.keep)).start()
    except BuildUnavailable as exc:
        if ready_fd is not None:
            os.write(ready_fd, f"error {exc}\n".encode())
        _say(f"error: {exc}")
        return 1
    try:
        plane.write_kubeconfig(kubeconfig)
        plane.write_state(kubeconfig=str(kubeconfig), supervisor=os.getpid())
        message = f"ready {plane.url} in {plane.started_seconds:.1f} s"
        if ready_fd is not None:
            os.write(ready_fd, f"{message}\n".encode())
            os.close(ready_fd)
        else:
            _say(f"{message}; KUBECONFIG={kubeconfig}; Ctrl-C stops it")
        while not stop.wait(1.0):
            dead = [p.name for p in plane._processes if not p.running()]
            if dead:
                _say(f"error: {', '.join(dead)} exited; stopping")
                return 1
        return 0
    finally:
        plane.stop()
        if kubeconfig.is_file():
            kubeconfig.unlink()


def _start(args: argparse.Namespace) -> int:
    if cached(args.version) is None:
        code = _build(args.version, args.etcd_version)
        if code:
            return code
    read, write = os.pipe()
    command = [
        sys.executable,
        "-m",
        "specc.testing.kube",
        "run",
        "--kubeconfig",
        str(Path(args.kubeconfig).resolve()),
        "--version",
        args.version,
        "--ready-fd",
        str(write),
    ]
    if args.keep:
        command.append("--keep")
    log = runs_root() / "supervisor.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        child = subprocess.Popen(
            command,
            pass_fds=(write,),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,  # outlives this shell command
        )
    os.close(write)
    with os.fdopen(read) as pipe:
        answer = pipe.readline().strip()
    if not answer.startswith("ready"):
        child.wait()
        _say(answer.removeprefix("error ") or f"the supervisor exited; see {log}")
        return 1
    _say(f"{answer} (supervisor pid {child.pid})")
    _say(f"export KUBECONFIG={Path(args.kubeconfig).resolve()}")
    _say(f"stop with: python -m specc.testing.kube stop --kubeconfig {args.kubeconfig}")
    return 0


def _stop(args: argparse.Namespace) -> int:
    wanted = str(Path(args.kubeconfig).resolve()) if args.kubeconfig else None
    stopped = 0
    root = runs_root()
    for state_file in sorted(root.glob(f"*/{STATE_FILE}")) if root.is_dir() else []:
        try:
            state = json.loads(state_file.read_text())
        except (OSError, ValueError):
            continue
        if "supervisor" not in state or (wanted and state.get("kubeconfig") != wanted):
            continue
        pid = int(state["supervisor"])
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            os.kill(pid, signal.SIGKILL)  # its children die with it (PR_SET_PDEATHSIG)
        stopped += 1
        _say(f"stopped {state.get('url')} ({state.get('kubeconfig')})")
    remove_stale_runs()
    if not stopped:
        _say("no control plane started by `start` " + (f"for {wanted}" if wanted else "is running"))
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run one command; return the exit code."""
    parser = argparse.ArgumentParser(prog="python -m specc.testing.kube", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    def versioned(command: argparse.ArgumentParser) -> None:
        command.add_argument("--version", default=KUBERNETES_VERSION, help="%(default)s")
        command.add_argument("--etcd-version", default=ETCD_VERSION, help="%(default)s")

    built = commands.add_parser(
        "build", help="build (or find cached) binaries; print their directory"
    )
    versioned(built)
    built.add_argument("--force", action="store_true", help="rebuild even when cached")
    for name, text in (
        ("start", "start in the background, return when ready"),
        ("run", "run in the foreground until Ctrl-C"),
    ):
        command = commands.add_parser(name, help=text)
        versioned(command)
        command.add_argument(
            "--kubeconfig", required=True, help="where to write the admin kubeconfig"
        )
        command.add_argument(
            "--keep", action="store_true", help="keep logs and etcd data after stop"
        )
        if name == "run":
            command.add_argument("--ready-fd", type=int, default=None, help=argparse.SUPPRESS)
    stop = commands.add_parser("stop", help="stop what `start` started")
    stop.add_argument("--kubeconfig", help="the one started with this kubeconfig (default: all)")
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            return _build(args.version, args.etcd_version, args.force)
        if args.command == "start":
            return _start(args)
        if args.command == "run":
            return _run(args, args.ready_fd)
        return _stop(args)
    except BuildUnavailable as exc:
        _say(f"error: {exc}")
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
