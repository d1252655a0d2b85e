"""Speed of the API server double through the real kubernetes client.

Measures N server-side applies of small Deployments (one client, keep-alive pool), one
LIST of all N, one re-apply pass that changes nothing, and a labelled LIST.

    /work/venv/bin/python bench/apiserver_speed.py [--objects 10000]
"""

from __future__ import annotations

import argparse
import json
import time

from specc.testing import ApiServer


def deployment(namespace: str, index: int) -> dict[str, object]:
    name = f"web-{index:05d}"
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app": name, "shard": str(index % 10)},
        },
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": "registry.example/web:1.2.3",
                            "ports": [{"name": "http", "containerPort": 8080}],
                            "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}},
                        }
                    ]
                },
            },
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--objects", type=int, default=10000)
    args = parser.parse_args()
    from kubernetes import client

    with ApiServer() as server:
        api = server.api_client()
        namespace = "bench"
        client.CoreV1Api(api).create_namespace({"metadata": {"name": namespace}})
        apps = client.AppsV1Api(api)
        bodies = [deployment(namespace, i) for i in range(args.objects)]

        def apply_all() -> float:
            started = time.perf_counter()
            for body in bodies:
                apps.patch_namespaced_deployment(
                    body["metadata"]["name"],  # type: ignore[index]
                    namespace,
                    body,
                    field_manager="bench",
                    force=True,
                    _content_type="application/apply-patch+yaml",
                )
            return time.perf_counter() - started

        created = apply_all()
        unchanged = apply_all()
        started = time.perf_counter()
        for body in bodies:
            # The same apply without building typed response models: the double's own cost.
            apps.patch_namespaced_deployment(
                body["metadata"]["name"],  # type: ignore[index]
                namespace,
                body,
                field_manager="bench",
                force=True,
                _content_type="application/apply-patch+yaml",
                _preload_content=False,
            ).read()
        raw = time.perf_counter() - started
        started = time.perf_counter()
        response = apps.list_namespaced_deployment(namespace, _preload_content=False)
        items = json.loads(response.data)["items"]
        listed = time.perf_counter() - started
        started = time.perf_counter()
        typed = apps.list_namespaced_deployment(namespace)
        listed_typed = time.perf_counter() - started
        started = time.perf_counter()
        shard = apps.list_namespaced_deployment(
            namespace, label_selector="shard=3", _preload_content=False
        )
        selected = len(json.loads(shard.data)["items"])
        listed_selected = time.perf_counter() - started
        n = args.objects
        print(f"{n} applies (create):          {created:7.2f} s  ({n / created:7.0f}/s)")
        print(f"{n} applies (unchanged):       {unchanged:7.2f} s  ({n / unchanged:7.0f}/s)")
        print(f"{n} applies (unchanged, raw): {raw:7.2f} s  ({n / raw:7.0f}/s)  (no typed models)")
        print(f"LIST of {len(items)} (raw JSON):     {listed:7.2f} s")
        print(
            f"LIST of {len(typed.items)} (typed models):  {listed_typed:7.2f} s  (client-side model building)"
        )
        print(f"LIST shard=3 ({selected} items):      {listed_selected:7.2f} s")
        print(f"requests counted: {sum(server.counters.values())}")


if __name__ == "__main__":
    main()
