"""specc render vs kubectl kustomize on equivalent synthetic fleets.

    /work/venv/bin/python bench/render_vs_kustomize.py [--sizes 50,500] [--specc-only 1000]
        [--kustomize-envs-at-500 1] [--repeat 3] [--keep DIR]

For each size N the generator writes two trees that declare the same objects:

- a specc fleet: 3 clusters (dev, staging, prod), one environment each, teams of 50
  apps, N ``Service`` apps → Deployment, Service, ConfigMap (hashed name), HPA, PDB,
  with environment overrides (dev: log level and HPA bounds; prod: HPA bounds and
  memory limit) and one cluster override on prod;
- a kustomize tree: ``base/<app>/`` (the 4 objects + a configMapGenerator) and
  ``overlays/<env>/`` referencing every base, with the same labels, namespaces and
  patches (strategic merge patches per app and environment).

It then times, in the same run:

- ``specc render FLEET --out DIR`` as a subprocess (the whole CLI: interpreter start,
  imports, load, validate, compile, the strict schema check, write), for all 3 clusters;
- the same in one process, with the import cost measured apart;
- ``kubectl kustomize overlays/<env>`` for each environment. At N ≥ 500 kustomize is
  slow (its time grows with the square of the app count), so only one environment
  (``--kustomize-env-at-500``, default staging: the overlay without patches, the
  cheapest) is run and the total is extrapolated ×3; the output says so. The patched
  overlays cost kustomize more (1,000 targeted patches at N=500 ran for minutes), so the
  extrapolation flatters kustomize.

Prints a table and the ratios (kustomize time for the 3 environments / specc time).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ENVS = ("dev", "staging", "prod")
TEAM_SIZE = 50
SPECC = [sys.executable, "-m", "specc"]
KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"


# --- the generators ------------------------------------------------------------------------


def _app_name(i: int) -> str:
    return f"svc-{i:04d}"


def _team(i: int) -> str:
    return f"team-{i // TEAM_SIZE:02d}"


def _dump(path: Path, docs: list[Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False), encoding="utf-8")


def write_specc_fleet(root: Path, n: int) -> None:
    """Write a specc fleet of ``n`` stateless services × 3 clusters under ``root``."""
    _dump(
        root / "fleet.yaml",
        [
            {
                "apiVersion": "specc.dev/v1alpha1",
                "kind": "Fleet",
                "metadata": {"name": "bench"},
                "spec": {
                    "environments": [{"name": e} for e in ENVS],
                    "clusters": [
                        {"name": e, "environment": e, "kubernetesVersion": "1.33"} for e in ENVS
                    ],
                },
            }
        ],
    )
    for t in sorted({_team(i) for i in range(n)}):
        _dump(
            root / f"teams/{t}.yaml",
            [{"apiVersion": "specc.dev/v1alpha1", "kind": "Team", "metadata": {"name": t}}],
        )
    for i in range(n):
        name, team = _app_name(i), _team(i)
        _dump(
            root / f"apps/{team}/{name}.yaml",
            [
                {
                    "apiVersion": "specc.dev/v1alpha1",
                    "kind": "Service",
                    "metadata": {"name": name, "team": team},
                    "spec": {
                        "image": f"ghcr.io/acme/{name}:1.{i % 7}.0",
                        "ports": [{"name": "http", "port": 80, "targetPort": 8080}],
                        "env": {"LOG_LEVEL": "info"},
                        "config": {"literals": {"APP_NAME": name, "WORKERS": str(2 + i % 4)}},
                        "resources": {
                            "requests": {"cpu": "100m", "memory": "128Mi"},
                            "limits": {"memory": "256Mi"},
                        },
                        "probes": {"readiness": {"path": "/healthz"}},
                        "autoscaling": {"minReplicas": 2, "maxReplicas": 6},
                        "disruptionBudget": {"maxUnavailable": 1},
                    },
                    "overrides": {
                        "environments": {
                            "dev": {
                                "env": {"LOG_LEVEL": "debug"},
                                "autoscaling": {"minReplicas": 1, "maxReplicas": 2},
                            },
                            "prod": {
                                "autoscaling": {"minReplicas": 3, "maxReplicas": 20},
                                "resources": {"limits": {"memory": "512Mi"}},
                            },
                        },
                        "clusters": {"prod": {"autoscaling": {"maxReplicas": 30}}},
                    },
                }
            ],
        )


def _labels(name: str, team: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/instance": name,
        "app.kubernetes.io/managed-by": "specc",
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/part-of": team,
        "specc.dev/team": team,
    }


def write_kustomize_tree(root: Path, n: int) -> None:
    """Write the equivalent kustomize tree: a base per app, an overlay per environment."""
    for i in range(n):
        name, team = _app_name(i), _team(i)
        base = root / "base" / name
        selector = {"app.kubernetes.io/name": name}
        deployment = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name},
            "spec": {
                "selector": {"matchLabels": selector},
                "template": {
                    "metadata": {"labels": _labels(name, team)},
                    "spec": {
                        "containers": [
                            {
                                "name": name,
                                "image": f"ghcr.io/acme/{name}:1.{i % 7}.0",
                                "ports": [
                                    {"name": "http", "containerPort": 8080, "protocol": "TCP"}
                                ],
                                "env": [
                                    {"name": "LOG_LEVEL", "value": "info"},
                                    *(
                                        {
                                            "name": k,
                                            "valueFrom": {
                                                "configMapKeyRef": {
                                                    "name": f"{name}-config",
                                                    "key": k,
                                                }
                                            },
                                        }
                                        for k in ("APP_NAME", "WORKERS")
                                    ),
                                ],
                                "resources": {
                                    "requests": {"cpu": "100m", "memory": "128Mi"},
                                    "limits": {"memory": "256Mi"},
                                },
                                "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}},
                            }
                        ]
                    },
                },
            },
        }
        service = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name},
            "spec": {
                "selector": selector,
                "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": "http"}],
            },
        }
        hpa = {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": name},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                "minReplicas": 2,
                "maxReplicas": 6,
                "metrics": [
                    {
                        "type": "Resource",
                        "resource": {
                            "name": "cpu",
                            "target": {"type": "Utilization", "averageUtilization": 80},
                        },
                    }
                ],
            },
        }
        pdb = {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": {"name": name},
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector}},
        }
        for fname, doc in (
            ("deployment.yaml", deployment),
            ("service.yaml", service),
            ("hpa.yaml", hpa),
            ("pdb.yaml", pdb),
        ):
            _dump(base / fname, [doc])
        _dump(
            base / "kustomization.yaml",
            [
                {
                    "apiVersion": "kustomize.config.k8s.io/v1beta1",
                    "kind": "Kustomization",
                    "namespace": team,
                    "labels": [{"pairs": _labels(name, team), "includeSelectors": False}],
                    "commonAnnotations": {"specc.dev/source": f"apps/{team}/{name}.yaml:1"},
                    "resources": ["deployment.yaml", "service.yaml", "hpa.yaml", "pdb.yaml"],
                    "configMapGenerator": [
                        {
                            "name": f"{name}-config",
                            "literals": [f"APP_NAME={name}", f"WORKERS={2 + i % 4}"],
                            "options": {"immutable": True},
                        }
                    ],
                }
            ],
        )
    for env in ENVS:
        patches = []
        for i in range(n):
            name = _app_name(i)
            if env == "dev":
                bounds = {"minReplicas": 1, "maxReplicas": 2}
            elif env == "prod":
                bounds = {"minReplicas": 3, "maxReplicas": 30}
            else:
                continue
            patches.append(
                {
                    "target": {"kind": "HorizontalPodAutoscaler", "name": name},
                    "patch": yaml.safe_dump(
                        {
                            "apiVersion": "autoscaling/v2",
                            "kind": "HorizontalPodAutoscaler",
                            "metadata": {"name": name},
                            "spec": bounds,
                        }
                    ),
                }
            )
            container: dict[str, Any] = {"name": name}
            if env == "dev":
                container["env"] = [{"name": "LOG_LEVEL", "value": "debug"}]
            else:
                container["resources"] = {"limits": {"memory": "512Mi"}}
            patches.append(
                {
                    "target": {"kind": "Deployment", "name": name},
                    "patch": yaml.safe_dump(
                        {
                            "apiVersion": "apps/v1",
                            "kind": "Deployment",
                            "metadata": {"name": name},
                            "spec": {"template": {"spec": {"containers": [container]}}},
                        }
                    ),
                }
            )
        kustomization: dict[str, Any] = {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": [f"../../base/{_app_name(i)}" for i in range(n)],
        }
        if patches:
            kustomization["patches"] = patches
        _dump(root / "overlays" / env / "kustomization.yaml", [kustomization])


# --- the timings ---------------------------------------------------------------------------


def _timed(cmd: list[str], **kw: Any) -> tuple[float, subprocess.CompletedProcess[bytes]]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, check=False, **kw)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr.decode()[-2000:]}")
    return elapsed, proc


def time_specc_cli(fleet: Path, out: Path, repeat: int) -> tuple[float, float, int]:
    """Return the median wall times of a full `specc render --out` subprocess into a fresh
    folder and of a re-render over it (nothing changed), and the objects rendered."""
    fresh, again = [], []
    for i in range(repeat):
        # A new folder each time: deleting thousands of files just before would slow
        # the creates of the next run.
        target = out / f"run-{i}"
        elapsed, proc = _timed([*SPECC, "render", str(fleet), "--out", str(target)])
        fresh.append(elapsed)
        elapsed, _ = _timed([*SPECC, "render", str(fleet), "--out", str(target)])
        again.append(elapsed)
    shutil.rmtree(out, ignore_errors=True)
    objects = int(proc.stdout.split()[1])
    return statistics.median(fresh), statistics.median(again), objects


_IN_PROCESS = r"""
import json, sys, time
t0 = time.perf_counter()
from specc.pipeline import render_path
from specc import write
import specc.check, specc.compile
t1 = time.perf_counter()
from pathlib import Path
fleet, out = Path(sys.argv[1]), Path(sys.argv[2])
phases = {}
from specc.pipeline import validate_path, compile_checked
t = time.perf_counter(); valid = validate_path(fleet); phases["load+validate"] = time.perf_counter() - t
from specc.compile import compile_fleet, fleet_crds
t = time.perf_counter(); renders = compile_fleet(valid); phases["compile"] = time.perf_counter() - t
from specc.check import CrdSchemas, check_objects
t = time.perf_counter()
crds = CrdSchemas.from_documents(fleet_crds(valid))
bad = [f for r in renders for f in check_objects(r.objects, r.kubernetes_version, crds)]
assert not bad, bad[:3]
phases["check"] = time.perf_counter() - t
t = time.perf_counter()
for r in renders:
    write.write_render(r, out)
phases["write"] = time.perf_counter() - t
print(json.dumps({"import": t1 - t0, "phases": phases}))
"""


def time_specc_in_process(fleet: Path, out: Path) -> dict[str, Any]:
    """Return import time and per-phase times of one render in a fresh interpreter."""
    shutil.rmtree(out, ignore_errors=True)
    _, proc = _timed([sys.executable, "-c", _IN_PROCESS, str(fleet), str(out)])
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def time_kustomize(tree: Path, envs: tuple[str, ...], repeat: int) -> dict[str, float]:
    """Return the median wall time of `kubectl kustomize overlays/<env>` per environment."""
    out = {}
    for env in envs:
        times = []
        for _ in range(repeat):
            elapsed, _ = _timed([KUBECTL, "kustomize", str(tree / "overlays" / env)])
            times.append(elapsed)
        out[env] = statistics.median(times)
    return out


def count_kustomize_objects(tree: Path, env: str) -> int:
    _, proc = _timed([KUBECTL, "kustomize", str(tree / "overlays" / env)])
    return sum(1 for d in yaml.safe_load_all(proc.stdout) if d)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="50,500", help="fleet sizes compared with kustomize")
    parser.add_argument("--specc-only", default="1000", help="sizes rendered by specc only")
    parser.add_argument(
        "--kustomize-env-at-500",
        default="staging",
        help="the one environment kustomize renders at N >= 500 (staging has no patches)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (median)")
    parser.add_argument("--keep", type=Path, help="generate under DIR and keep it")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    specc_only = [int(s) for s in args.specc_only.split(",") if s]

    base = args.keep or Path(tempfile.mkdtemp(prefix="specc-bench-"))
    rows = []
    try:
        for n in sorted(set(sizes + specc_only)):
            fleet, tree, out = base / f"fleet-{n}", base / f"kustomize-{n}", base / f"out-{n}"
            shutil.rmtree(fleet, ignore_errors=True)
            write_specc_fleet(fleet, n)
            cli, rerender, objects = time_specc_cli(fleet, out, args.repeat)
            # --output prints one cluster; kustomize prints one overlay.
            stdout_all, _ = _timed(
                [*SPECC, "render", str(fleet), "--output", "yaml", "--cluster", "prod"]
            )
            one_cluster, _ = _timed(
                [*SPECC, "render", str(fleet), "--out", str(out), "--cluster", "prod"]
            )
            inproc = time_specc_in_process(fleet, out)
            row: dict[str, Any] = {
                "n": n,
                "objects": objects,
                "specc_cli": cli,
                "specc_cli_one_cluster": one_cluster,
                "specc_stdout": stdout_all,
                "specc_rerender": rerender,
                "import": inproc["import"],
                "phases": inproc["phases"],
            }
            if n in sizes:
                shutil.rmtree(tree, ignore_errors=True)
                write_kustomize_tree(tree, n)
                envs = ENVS if n < 500 else (args.kustomize_env_at_500,)
                reps = args.repeat if n < 500 else 1
                per_env = time_kustomize(tree, envs, reps)
                row["kustomize_per_env"] = per_env
                row["kustomize_envs_run"] = len(envs)
                row["kustomize_total"] = statistics.mean(per_env.values()) * len(ENVS)
                row["kustomize_objects_per_env"] = count_kustomize_objects(tree, envs[-1])
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)

    print(f"\nPython {sys.version.split()[0]}, {os.cpu_count()} CPUs; medians of {args.repeat}")
    print(
        "| apps | objects (3 clusters) | specc --out, 3 clusters | re-render, unchanged "
        "| specc -o yaml, 1 cluster | specc --out, 1 cluster "
        "| import | load+validate | compile | check | write "
        "| kustomize per env | kustomize, 3 envs | kustomize / specc |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        p = r["phases"]
        cells = [
            str(r["n"]),
            str(r["objects"]),
            f"{r['specc_cli']:.2f} s",
            f"{r['specc_rerender']:.2f} s",
            f"{r['specc_stdout']:.2f} s",
            f"{r['specc_cli_one_cluster']:.2f} s",
            f"{r['import']:.2f} s",
            f"{p['load+validate']:.2f} s",
            f"{p['compile']:.2f} s",
            f"{p['check']:.2f} s",
            f"{p['write']:.2f} s",
        ]
        if "kustomize_total" in r:
            per_env = statistics.mean(r["kustomize_per_env"].values())
            note = "" if r["kustomize_envs_run"] == len(ENVS) else " (staging ×3)"
            cells += [
                f"{per_env:.2f} s",
                f"{r['kustomize_total']:.2f} s{note}",
                f"{r['kustomize_total'] / r['specc_cli']:.1f}×",
            ]
        else:
            cells += ["—", "—", "—"]
        print("| " + " | ".join(cells) + " |")
    for a, b in itertools.pairwise(rows):
        growth = {key: b[key] / a[key] for key in ("specc_cli", "specc_rerender", "specc_stdout")}
        compile_growth = b["phases"]["compile"] / a["phases"]["compile"]
        print(
            f"{a['n']} → {b['n']} apps ({b['n'] / a['n']:.0f}×): --out {growth['specc_cli']:.1f}×, "
            f"re-render {growth['specc_rerender']:.1f}×, -o yaml {growth['specc_stdout']:.1f}×, "
            f"compile phase {compile_growth:.1f}×"
        )
    for r in rows:
        if "kustomize_per_env" in r:
            per_env = statistics.mean(r["kustomize_per_env"].values())
            print(
                f"N={r['n']}: one cluster, specc {r['specc_cli_one_cluster']:.2f} s vs "
                f"kustomize one env {per_env:.2f} s "
                f"({per_env / r['specc_cli_one_cluster']:.1f}×); "
                f"kustomize renders {r['kustomize_objects_per_env']} objects per env"
            )


if __name__ == "__main__":
    main()
