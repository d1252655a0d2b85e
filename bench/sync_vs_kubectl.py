"""Sync of a fleet: specc vs kubectl, against the API server double or a real kube-apiserver.

Both tools apply the same rendered objects with server-side apply and an ApplySet
(kubectl: `apply --server-side --prune --applyset=configmaps/<name>`, which needs
KUBECTL_APPLYSET=true and one namespace), first onto an empty cluster, then again with
nothing changed. Each tool gets a fresh cluster of its own.

``--target double`` (default): requests are counted by the double, which runs in this
process with specc's client (sharing the interpreter only slows specc down).
``--target real``: a real kube-apiserver 1.36 and etcd (``specc.testing.kube``; no
controllers, so the tools have the CPU) on loopback; requests are counted from the
API server's audit log of the admin user both tools authenticate as.

    python bench/sync_vs_kubectl.py [--services 1000] [--target double|real]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

from specc.pipeline import render_path
from specc.sync import Cluster, ClusterOptions, SyncOptions, sync
from specc.testing import ApiServer
from specc.write import to_yaml

TEAM = "bench"


def write_fleet(root: Path, services: int) -> None:
    """One team (kubectl's ApplySet needs one namespace), N services of 5 objects each."""
    (root / "teams").mkdir(parents=True)
    (root / "apps").mkdir()
    (root / "fleet.yaml").write_text(
        "apiVersion: specc.dev/v1alpha1\nkind: Fleet\nmetadata: {name: bench}\n"
        "spec:\n  environments: [{name: prod}]\n"
        "  clusters: [{name: bench, environment: prod, kubernetesVersion: '1.33'}]\n"
    )
    (root / "teams/bench.yaml").write_text(
        f"apiVersion: specc.dev/v1alpha1\nkind: Team\nmetadata: {{name: {TEAM}}}\n"
        "spec:\n  network: {allowSameNamespace: false}\n"
    )
    docs = []
    for i in range(services):
        docs.append(
            {
                "apiVersion": "specc.dev/v1alpha1",
                "kind": "Service",
                "metadata": {"name": f"svc-{i:04d}", "team": TEAM},
                "spec": {
                    "image": f"registry.example/svc-{i:04d}:1.{i % 7}.0",
                    "autoscaling": {"minReplicas": 2, "maxReplicas": 6},
                    "ports": [{"name": "http", "port": 80, "targetPort": 8080}],
                    "config": {"literals": {"LEVEL": "info", "INDEX": str(i)}},
                    "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
                    "disruptionBudget": {"maxUnavailable": 1},
                },
            }
        )
    (root / "apps/services.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False))


def kubectl(kubeconfig: Path, manifest: Path) -> float:
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "KUBECTL_APPLYSET": "true"}
    cmd = [
        "kubectl", "apply", "--server-side", "--prune", "--applyset=configmaps/kubectl-bench",
        "-n", TEAM, "-f", str(manifest),
    ]  # fmt: skip
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    took = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"kubectl failed: {proc.stderr[-2000:]}")
    return took


#: Counts the requests made since the last call: () -> (requests, writes).
Counter_ = Callable[[], tuple[int, int]]


@contextmanager
def double_cluster() -> Iterator[tuple[Path, Counter_]]:
    """Yield a fresh double's kubeconfig and a counter of the requests it served."""
    with ApiServer() as srv:

        def count() -> tuple[int, int]:
            counted = (len(srv.log.records), srv.log.writes())
            srv.log.clear()
            return counted

        yield srv.kubeconfig_path, count


@contextmanager
def real_cluster() -> Iterator[tuple[Path, Counter_]]:
    """Yield a fresh real control plane's admin kubeconfig and a counter from its audit log."""
    from specc.testing import kube

    build = kube.cached()
    if build is None:
        sys.exit("the real control plane is not built: python -m specc.testing.kube build")
    options = kube.ControlPlaneOptions(controller_manager=False, audit_users=("specc-admin",))
    with kube.ControlPlane(build, options) as plane:
        seen = 0

        def count() -> tuple[int, int]:
            nonlocal seen
            events = plane.audit_events("specc-admin")
            new, seen = events[seen:], len(events)
            writes = sum(
                1
                for e in new
                if e["verb"] in ("create", "update", "patch", "delete")
                and "dryRun=All" not in e["requestURI"]
            )
            return len(new), writes

        yield plane.kubeconfig_path, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--target", choices=("double", "real"), default="double")
    args = parser.parse_args()
    if shutil.which("kubectl") is None:
        sys.exit("kubectl is not on PATH")
    fresh = double_cluster if args.target == "double" else real_cluster
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "fleet"
        write_fleet(root, args.services)
        _, (render,) = render_path(root)
        manifest = Path(tmp) / "objects.yaml"
        manifest.write_text("---\n".join(to_yaml(o.body) for o in render.objects))
        n = len(render.objects)
        rows = []
        with fresh() as (kubeconfig, count):
            options = ClusterOptions(kubeconfig=str(kubeconfig), concurrency=8)
            count()
            for label in ("first apply", "no-op resync"):
                cluster = Cluster.connect(options)
                start = time.perf_counter()
                result = sync(cluster, render, SyncOptions(concurrency=8))
                took = time.perf_counter() - start
                failed = [r.to_dict() for r in result.results if r.outcome == "failed"]
                assert result.ok, (result.refused, failed[:3])
                rows.append(("specc", label, took, *count()))
        with fresh() as (kubeconfig, count):
            # kubectl writes its ApplySet parent before any object, so its namespace must exist.
            ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": TEAM}}
            setup = Cluster.connect(ClusterOptions(kubeconfig=str(kubeconfig)))
            setup.apply(ns, force=True, manager="bench-setup")
            count()
            for label in ("first apply", "no-op resync"):
                took = kubectl(kubeconfig, manifest)
                rows.append(("kubectl", label, took, *count()))
    print(f"{n} objects, {args.services} services in one namespace, on the {args.target} server")
    print(f"{'tool':8} {'run':14} {'seconds':>8} {'requests':>9} {'writes':>7}")
    for tool, label, took, reqs, w in rows:
        print(f"{tool:8} {label:14} {took:8.2f} {reqs:9d} {w:7d}")
    by = {(t, lbl): (s, r) for t, lbl, s, r, _ in rows}
    for label in ("first apply", "no-op resync"):
        ks, kr = by[("kubectl", label)]
        ss, sr = by[("specc", label)]
        print(f"{label}: specc {ks / ss:.1f}x faster, {kr / max(sr, 1):.1f}x fewer requests")


if __name__ == "__main__":
    main()
