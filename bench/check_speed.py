"""Benchmark: schema check of rendered objects, specc vs kubernetes-validate vs jsonschema.

    /work/venv/bin/python bench/check_speed.py [--apps 500] [--kv-sample 200] [--repeat 5]

Each app renders five objects (Deployment, Service, ConfigMap, HPA, PDB), so the
default is 2,500 objects. All three checkers run in the same process on the same
objects, against the strict Kubernetes 1.33 schemas:

- specc: ``specc.check.check_objects`` (jsonschema_rs, one validator per kind, cached);
- kubernetes-validate: ``kubernetes_validate.validate(obj, "1.33.0", strict=True)``, on
  a sample (it re-reads its definitions per call, so the full set takes ~20 s);
- jsonschema: a ``Draft202012Validator`` built once per kind from the same schemas
  specc compiles, reused for every object.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections.abc import Callable
from typing import Any

from specc.errors import Position
from specc.objects import DesiredObject

VERSION = "1.33"


def app_objects(i: int) -> list[dict[str, Any]]:
    """Return the five objects a typical stateless app renders to."""
    name, ns = f"app-{i:04d}", f"team-{i % 20:02d}"
    labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/managed-by": "specc"}
    meta = {
        "name": name,
        "namespace": ns,
        "labels": labels,
        "annotations": {"specc.dev/source": f"apps/{ns}/{name}.yaml:1"},
    }
    selector = {"matchLabels": {"app.kubernetes.io/name": name}}
    container = {
        "name": name,
        "image": f"registry.example.com/{ns}/{name}:1.{i % 30}.0",
        "ports": [{"name": "http", "containerPort": 8080}],
        "env": [{"name": "LOG_LEVEL", "value": "info"}, {"name": "PORT", "value": "8080"}],
        "envFrom": [{"configMapRef": {"name": f"{name}-config"}}],
        "resources": {
            "requests": {"cpu": "250m", "memory": "256Mi"},
            "limits": {"cpu": "1", "memory": "512Mi"},
        },
        "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"}, "periodSeconds": 5},
        "livenessProbe": {"httpGet": {"path": "/live", "port": "http"}, "periodSeconds": 10},
        "securityContext": {"runAsNonRoot": True, "readOnlyRootFilesystem": True},
    }
    return [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": meta,
            "spec": {
                "selector": selector,
                "strategy": {"rollingUpdate": {"maxUnavailable": "25%", "maxSurge": 1}},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "containers": [container],
                        "topologySpreadConstraints": [
                            {
                                "maxSkew": 1,
                                "topologyKey": "topology.kubernetes.io/zone",
                                "whenUnsatisfiable": "ScheduleAnyway",
                                "labelSelector": selector,
                            }
                        ],
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": meta,
            "spec": {
                "selector": {"app.kubernetes.io/name": name},
                "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
            },
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {**meta, "name": f"{name}-config"},
            "data": {"LOG_FORMAT": "json", "app.toml": f"name = '{name}'\nworkers = 4\n"},
        },
        {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": meta,
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                "minReplicas": 2,
                "maxReplicas": 10,
                "metrics": [
                    {
                        "type": "Resource",
                        "resource": {
                            "name": "cpu",
                            "target": {"type": "Utilization", "averageUtilization": 70},
                        },
                    }
                ],
            },
        },
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": meta,
            "spec": {"maxUnavailable": 1, "selector": selector},
        },
    ]


def best_of(repeat: int, fn: Callable[[], object]) -> float:
    """Return the median wall time of ``repeat`` runs of ``fn``."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=500)
    parser.add_argument(
        "--kv-sample", type=int, default=200, help="objects for kubernetes-validate"
    )
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    bodies = [o for i in range(args.apps) for o in app_objects(i)]
    objects = [DesiredObject(b, Position(f"apps/{i}.yaml", 1, 1)) for i, b in enumerate(bodies)]
    n = len(objects)

    t0 = time.perf_counter()
    from specc.check import KubernetesSchemas, check_objects

    import_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    findings = check_objects(objects, VERSION)  # cold: reads definitions, compiles 5 kinds
    cold_s = time.perf_counter() - t0
    assert findings == [], findings[:3]
    specc_s = best_of(args.repeat, lambda: check_objects(objects, VERSION))

    # The floor: jsonschema_rs is_valid alone, without specc's lookups and metadata rule.
    schemas_rs = KubernetesSchemas(VERSION)
    rs = [(schemas_rs.validator(b["apiVersion"], b["kind"]), b) for b in bodies]
    raw_s = best_of(args.repeat, lambda: [v.is_valid(b) for v, b in rs if v is not None])

    # jsonschema, one Draft 2020-12 validator per kind built up front and reused.
    import jsonschema

    schemas = schemas_rs
    t0 = time.perf_counter()
    js: dict[tuple[str, str], Any] = {}
    for b in bodies:
        key = (b["apiVersion"], b["kind"])
        if key not in js:
            js[key] = jsonschema.Draft202012Validator(schemas.schema(*key))
    js_build_s = time.perf_counter() - t0

    def run_jsonschema() -> None:
        for b in bodies:
            js[(b["apiVersion"], b["kind"])].validate(b)

    js_s = best_of(max(1, args.repeat // 2), run_jsonschema)

    # kubernetes-validate, the library's own entry point, on a sample.
    import kubernetes_validate

    step = max(1, n // args.kv_sample)
    sample = [copy.deepcopy(b) for b in bodies[::step]][: args.kv_sample]

    def run_kv() -> None:
        for b in sample:
            kubernetes_validate.validate(b, VERSION + ".0", strict=True)

    kv_s = best_of(1, run_kv)

    per = {
        "specc (jsonschema_rs)": specc_s / n,
        "jsonschema_rs is_valid only": raw_s / n,
        "jsonschema, built once": js_s / n,
        "kubernetes-validate": kv_s / len(sample),
    }
    print(f"{n} objects ({args.apps} apps x 5 kinds), Kubernetes {VERSION} strict schemas")
    print(f"import specc.check: {import_s * 1e3:.1f} ms")
    print(f"specc first check (load definitions, compile 5 kinds): {cold_s * 1e3:.1f} ms")
    print(f"specc warm check of all {n}: {specc_s * 1e3:.1f} ms")
    print(f"jsonschema validators built for 5 kinds: {js_build_s * 1e3:.1f} ms")
    print(f"kubernetes-validate sample: {len(sample)} objects")
    print()
    print(f"{'checker':<30}{'per object':>14}{'time / specc':>16}")
    for name, t in per.items():
        ratio = t / per["specc (jsonschema_rs)"]
        print(f"{name:<30}{t * 1e6:>11.1f} µs{ratio:>15.1f}x")


if __name__ == "__main__":
    main()
