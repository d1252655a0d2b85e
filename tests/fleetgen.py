"""A synthetic fleet for the reliability tests: N services, a few stateful ones, a PVC.

One cluster (``bench``), teams of 25 apps. Besides stateless ``Service`` apps (Deployment,
Service, hashed ConfigMap, HPA, PDB) every tenth app is a ``StatefulService``
(StatefulSet, headless Service, volumeClaimTemplates) and each team owns one
``Manifests`` PersistentVolumeClaim, so prune protection is exercised too.

:func:`revise` changes a fleet the way successive commits do: new image tags, config
changes (the hashed ConfigMap is replaced, the old one pruned), apps added and removed.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import yaml

CLUSTER = "bench"
TEAM_SIZE = 25
API = "specc.dev/v1alpha1"


def team_of(i: int) -> str:
    return f"team-{i // TEAM_SIZE:02d}"


def app_name(i: int) -> str:
    return f"svc-{i:04d}"


def _dump(path: Path, doc: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")


def _service(i: int, version: int = 0, workers: int | None = None) -> dict[str, Any]:
    name, team = app_name(i), team_of(i)
    if i % 10 == 9:
        return {
            "apiVersion": API,
            "kind": "StatefulService",
            "metadata": {"name": name, "team": team},
            "spec": {
                "image": f"ghcr.io/acme/{name}:1.{version}.0",
                "members": 2,
                "ports": [{"name": "db", "port": 5432}],
                "resources": {
                    "requests": {"cpu": "100m", "memory": "128Mi"},
                    "limits": {"memory": "256Mi"},
                },
                "storage": {"size": "1Gi", "mountPath": "/data"},
            },
        }
    return {
        "apiVersion": API,
        "kind": "Service",
        "metadata": {"name": name, "team": team},
        "spec": {
            "image": f"ghcr.io/acme/{name}:1.{version}.0",
            "ports": [{"name": "http", "port": 80, "targetPort": 8080}],
            "env": {"LOG_LEVEL": "info"},
            "config": {
                "literals": {
                    "APP_NAME": name,
                    "WORKERS": str(workers if workers is not None else 2 + i % 4),
                }
            },
            "resources": {
                "requests": {"cpu": "100m", "memory": "128Mi"},
                "limits": {"memory": "256Mi"},
            },
            "probes": {"readiness": {"path": "/healthz"}},
            "autoscaling": {"minReplicas": 1, "maxReplicas": 4},
            "disruptionBudget": {"maxUnavailable": 1},
        },
    }


def _scratch_pvc(team: str) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "Manifests",
        "metadata": {"name": "scratch", "team": team},
        "spec": {
            "objects": [
                {
                    "apiVersion": "v1",
                    "kind": "PersistentVolumeClaim",
                    "metadata": {"name": "scratch"},
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": "1Gi"}},
                    },
                }
            ]
        },
    }


def write_fleet(root: Path, n: int, budget: float = 0.25) -> Path:
    """Write a fleet of ``n`` apps under ``root`` (one cluster, ``bench``); return ``root``."""
    _dump(
        root / "fleet.yaml",
        {
            "apiVersion": API,
            "kind": "Fleet",
            "metadata": {"name": "reliability"},
            "spec": {
                "environments": [{"name": "prod"}],
                "clusters": [{"name": CLUSTER, "environment": "prod", "kubernetesVersion": "1.33"}],
                "prune": {"budget": budget},
            },
        },
    )
    for t in sorted({team_of(i) for i in range(n)}):
        _dump(
            root / f"teams/{t}.yaml", {"apiVersion": API, "kind": "Team", "metadata": {"name": t}}
        )
        _dump(root / f"apps/{t}/scratch.yaml", _scratch_pvc(t))
    for i in range(n):
        _dump(root / f"apps/{team_of(i)}/{app_name(i)}.yaml", _service(i))
    return root


def app_files(root: Path) -> list[Path]:
    """Return the generated app files (not the scratch PVCs), sorted."""
    return sorted(p for p in root.glob("apps/*/svc-*.yaml"))


def revise(root: Path, step: int, rng: random.Random) -> str:
    """Change the fleet the way one commit does; return a one-line description.

    Rolls a few images, changes one config (its hashed ConfigMap is replaced), and every
    third step removes one app and adds another: each commit prunes a little, well
    within the budget.
    """
    files = app_files(root)
    changed = []
    for path in rng.sample(files, k=min(3, len(files))):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        doc["spec"]["image"] = doc["spec"]["image"].rsplit(":", 1)[0] + f":1.{step}.0"
        if doc["kind"] == "Service" and path == files[step % len(files)]:
            doc["spec"]["config"]["literals"]["WORKERS"] = str(step % 9 + 1)
        _dump(path, doc)
        changed.append(path.stem)
    what = f"roll {', '.join(changed)}"
    if step % 3 == 0 and len(files) > 2:
        gone = rng.choice(files)
        gone.unlink()
        index = 1000 + step
        # A stateless service in an existing team (the team of the app removed).
        doc = _service(index - index % 10)  # index ending in 0: a Service
        doc["metadata"]["name"] = app_name(index)
        doc["metadata"]["team"] = gone.parent.name
        doc["spec"]["config"]["literals"]["APP_NAME"] = app_name(index)
        _dump(gone.parent / f"{app_name(index)}.yaml", doc)
        what += f"; remove {gone.stem}; add {app_name(index)}"
    return what
