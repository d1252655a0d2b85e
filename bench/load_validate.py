"""Benchmark: load + validate a generated fleet of 1,000 app specs.

Run: python bench/load_validate.py [--apps 1000] [--runs 5]

Writes a synthetic fleet (Services and StatefulServices with environment and cluster
overrides, spread over 20 teams) into a temporary folder, then times
``validate_fleet(load_fleet(root))``, median of several runs, and prints seconds per
1,000 specs. As a baseline it also times ruamel.yaml's round-trip loader (the usual
way to keep positions) reading the same files, without any validation.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from specc.load import load_fleet
from specc.validate import validate_fleet

FLEET = """\
apiVersion: specc.dev/v1alpha1
kind: Fleet
metadata: {name: bench}
spec:
  environments: [{name: dev}, {name: staging}, {name: prod}]
  clusters:
    - {name: dev, environment: dev, labels: {region: eu}}
    - {name: staging, environment: staging, labels: {region: eu}}
    - {name: prod-eu, environment: prod, labels: {region: eu}}
    - {name: prod-us, environment: prod, labels: {region: us}}
"""

TEAM = """\
apiVersion: specc.dev/v1alpha1
kind: Team
metadata: {{name: team-{t}}}
spec:
  owners: [team-{t}@example.com]
  quota: {{cpu: "40", memory: 128Gi, pods: 400}}
"""

SERVICE = """\
apiVersion: specc.dev/v1alpha1
kind: Service
metadata:
  name: svc-{i}
  team: team-{t}
spec:
  image: ghcr.io/acme/svc-{i}:1.{i}.0
  replicas: 2
  ports:
    - {{name: http, port: 8080}}
    - {{name: metrics, port: 9090, metrics: true}}
  env:
    LOG_FORMAT: json
    WORKERS: 4
  secrets:
    - {{secret: svc-{i}-db, key: password, env: DB_PASSWORD}}
  resources:
    requests: {{cpu: 100m, memory: 128Mi}}
    limits: {{cpu: "1", memory: 256Mi}}
  probes:
    readiness: {{path: /healthz, port: http}}
  expose:
    ingress: {{host: svc-{i}.example.com}}
  disruptionBudget: {{minAvailable: 1}}
placement:
  environments: [dev, staging, prod]
overrides:
  environments:
    dev:
      replicas: 1
      resources: {{requests: {{cpu: 50m, memory: 64Mi}}, limits: {{cpu: 500m, memory: 128Mi}}}}
    prod:
      replicas: 4
  clusters:
    prod-us:
      env: {{REGION: us}}
"""

STATEFUL = """\
apiVersion: specc.dev/v1alpha1
kind: StatefulService
metadata:
  name: db-{i}
  team: team-{t}
spec:
  image: docker.io/library/postgres:16.{t}
  members: 3
  ports: [{{name: postgres, port: 5432}}]
  secrets:
    - {{secret: db-{i}-superuser, key: password, env: POSTGRES_PASSWORD}}
  resources:
    requests: {{cpu: 500m, memory: 1Gi}}
    limits: {{memory: 1Gi}}
  storage: {{size: 20Gi, storageClassName: fast}}
  backup:
    schedule: "30 2 * * *"
    image: ghcr.io/acme/pg-backup:1.3.0
    command: [/backup]
overrides:
  environments:
    dev:
      members: 1
      storage: {{size: 1Gi}}
      backup: null
  clusters:
    prod-eu:
      updatePartition: 2
"""


def generate(root: Path, apps: int, teams: int = 20) -> None:
    """Write a fleet of ``apps`` specs (3 Services for each StatefulService) under ``root``."""
    (root / "teams").mkdir(parents=True)
    (root / "fleet.yaml").write_text(FLEET)
    for t in range(teams):
        (root / "teams" / f"team-{t}.yaml").write_text(TEAM.format(t=t))
        (root / "apps" / f"team-{t}").mkdir(parents=True)
    for i in range(apps):
        t = i % teams
        text = STATEFUL.format(i=i, t=t) if i % 4 == 3 else SERVICE.format(i=i, t=t)
        (root / "apps" / f"team-{t}" / f"app-{i}.yaml").write_text(text)


def median_seconds(fn: Callable[[], None], runs: int) -> tuple[float, float]:
    """Return the median CPU seconds and median wall seconds of ``runs`` calls of ``fn``.

    CPU time is the headline: on a shared machine wall time swings 3x between runs.
    """
    cpu, wall = [], []
    for _ in range(runs):
        c, w = time.process_time(), time.perf_counter()
        fn()
        cpu.append(time.process_time() - c)
        wall.append(time.perf_counter() - w)
    return statistics.median(cpu), statistics.median(wall)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "fleet"
        generate(root, args.apps)
        files = sorted(root.rglob("*.yaml"))
        size = sum(f.stat().st_size for f in files)

        def specc_run() -> None:
            fleet = validate_fleet(load_fleet(root))
            assert len(fleet.apps) == args.apps

        specc_run()  # warm up imports
        ours, ours_wall = median_seconds(specc_run, args.runs)

        from ruamel.yaml import YAML

        def ruamel_run() -> None:
            yaml = YAML(typ="rt")
            for f in files:
                list(yaml.load_all(f.read_text()))

        base, base_wall = median_seconds(ruamel_run, max(1, args.runs // 2))

    per_1000 = ours / args.apps * 1000
    print(f"fleet: {args.apps} app specs in {len(files)} files, {size / 1e6:.2f} MB")
    print(
        f"specc load+validate: {per_1000:.3f} s CPU per 1,000 specs "
        f"(median of {args.runs}; wall {ours_wall:.3f} s)"
    )
    print(f"baseline, ruamel.yaml round-trip load only: {base:.3f} s CPU (wall {base_wall:.3f} s)")
    print(f"specc / baseline: {ours / base:.2f}")


if __name__ == "__main__":
    main()
