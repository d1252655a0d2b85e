"""Cost of protobuf request bodies in the API server double, as a ratio to JSON bodies.

Creates N Deployments through the double's API layer (no HTTP) twice, once from JSON
bodies and once from the protobuf bodies of the same objects (what kubectl 1.32+ sends
for ``kubectl create deployment``), and times the decoding step alone against
``json.loads`` of the same object. The first protobuf body also loads the shipped
descriptors; that one-off cost is reported apart.

    .venv/bin/python bench/protobuf_bodies.py [--objects 2000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

from specc.testing import protobuf as pb
from specc.testing.api import Cluster, Request, Target


def _message(index: int) -> Any:
    deployment = pb.schema().message_class("k8s.io.api.apps.v1.Deployment")()
    name = f"web-{index:05d}"
    deployment.metadata.name = name
    deployment.metadata.labels["app"] = name
    deployment.spec.replicas = 2
    deployment.spec.selector.matchLabels["app"] = name
    deployment.spec.template.metadata.labels["app"] = name
    container = deployment.spec.template.spec.containers.add()
    container.name = "app"
    container.image = "registry.example/web:1.2.3"
    port = container.ports.add()
    port.name = "http"
    port.containerPort = 8080
    container.resources.requests["cpu"].string = "250m"
    container.resources.requests["memory"].string = "256Mi"
    return deployment


def _protobuf(message: Any) -> bytes:
    envelope = pb.schema().message_class("k8s.io.apimachinery.pkg.runtime.Unknown")()
    envelope.typeMeta.apiVersion = "apps/v1"
    envelope.typeMeta.kind = "Deployment"
    envelope.raw = message.SerializeToString()
    return pb.MAGIC + envelope.SerializeToString()


def _create_all(bodies: list[bytes], media: str) -> float:
    cluster = Cluster()
    namespaces = cluster.lookup("", "v1", "namespaces")
    deployments = cluster.lookup("apps", "v1", "deployments")
    assert namespaces is not None and deployments is not None
    namespace = json.dumps({"metadata": {"name": "bench"}}).encode()
    cluster.create(Target(namespaces, "", "", ""), Request("POST", "/", {}, {}, namespace))
    started = time.perf_counter()
    for body in bodies:
        request = Request("POST", "/", {"fieldManager": "bench"}, {"content-type": media}, body)
        cluster.create(Target(deployments, "bench", "", ""), request)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--objects", type=int, default=2000)
    args = parser.parse_args()
    started = time.perf_counter()
    pb.schema()
    load = time.perf_counter() - started
    messages = [_message(i) for i in range(args.objects)]
    as_protobuf = [_protobuf(m) for m in messages]
    as_json = [json.dumps(pb.decode(b, "apps", "v1", "Deployment")).encode() for b in as_protobuf]

    decode_protobuf = min(
        _timed(lambda: [pb.decode(b, "apps", "v1", "Deployment") for b in as_protobuf])
        for _ in range(3)
    )
    decode_json = min(_timed(lambda: [json.loads(b) for b in as_json]) for _ in range(3))
    create_json = statistics.median(_create_all(as_json, "application/json") for _ in range(3))
    create_protobuf = statistics.median(_create_all(as_protobuf, pb.MEDIA_TYPE) for _ in range(3))
    n = args.objects
    print(f"schema load (once per process): {load * 1000:.0f} ms")
    print(
        f"decode: protobuf {decode_protobuf / n * 1e6:.0f} us, json.loads "
        f"{decode_json / n * 1e6:.0f} us per Deployment ({decode_protobuf / decode_json:.1f}x)"
    )
    print(
        f"create: protobuf {create_protobuf / n * 1e6:.0f} us, JSON {create_json / n * 1e6:.0f} us "
        f"per Deployment ({create_protobuf / create_json:.2f}x)"
    )


def _timed(work: Any) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
