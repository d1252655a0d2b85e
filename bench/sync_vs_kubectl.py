"""Sync of a 5,000-object fleet against the API server double: specc vs kubectl.

Both tools apply the same rendered objects with server-side apply and an ApplySet
(kubectl: `apply --server-side --prune --applyset=configmaps/<name>`, which needs
KUBECTL_APPLYSET=true and one namespace), first onto an empty double, then again with
nothing changed. Requests are counted by the double; both run in this one process's
double, with specc's client in-process (sharing the interpreter with the server, which
only slows specc down).

    python bench/sync_vs_kubectl.py [--services 1000]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=1000)
    args = parser.parse_args()
    if shutil.which("kubectl") is None:
        sys.exit("kubectl is not on PATH")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "fleet"
        write_fleet(root, args.services)
        _, (render,) = render_path(root)
        manifest = Path(tmp) / "objects.yaml"
        manifest.write_text("---\n".join(to_yaml(o.body) for o in render.objects))
        n = len(render.objects)
        rows = []
        with ApiServer() as srv:
            options = ClusterOptions(concurrency=8)
            for label in ("first apply", "no-op resync"):
                srv.log.clear()
                cluster = Cluster(srv.api_client(), options)
                start = time.perf_counter()
                result = sync(cluster, render, SyncOptions(concurrency=8))
                took = time.perf_counter() - start
                assert result.ok, result.refused
                rows.append(("specc", label, took, len(srv.log.records), srv.log.writes()))
        with ApiServer() as srv:
            # kubectl writes its ApplySet parent before any object, so its namespace must exist.
            ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": TEAM}}
            Cluster(srv.api_client()).apply(ns, force=True, manager="bench-setup")
            for label in ("first apply", "no-op resync"):
                srv.log.clear()
                took = kubectl(srv.kubeconfig_path, manifest)
                rows.append(("kubectl", label, took, len(srv.log.records), srv.log.writes()))
    print(f"{n} objects, {args.services} services in one namespace")
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
