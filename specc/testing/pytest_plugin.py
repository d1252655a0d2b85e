"""Pytest fixtures for the API server double (and for a real cluster when one is given).

Import the fixtures in a ``conftest.py``::

    from specc.testing.pytest_plugin import apiserver, kube  # noqa: F401

``apiserver`` is always the double (fault injection, request log). ``kube`` is the
double too, unless ``SPECC_TEST_KUBECONFIG`` names a real cluster's kubeconfig; either
way it offers a fresh namespace and the same client factories, so client-facing tests
run unchanged against both.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from specc.testing.apiserver import ApiServer

KUBECONFIG_ENV = "SPECC_TEST_KUBECONFIG"


@dataclass
class KubeTarget:
    """A cluster under test: the double (``server`` set) or a real one (``server`` None)."""

    kubeconfig_path: Path
    namespace: str
    server: ApiServer | None = None

    @property
    def is_double(self) -> bool:
        """Return whether this is the in-process double (faults and counters available)."""
        return self.server is not None

    def api_client(self) -> Any:
        """Return a ``kubernetes.client.ApiClient`` for the cluster."""
        if self.server is not None:
            return self.server.api_client()
        from kubernetes import config

        factory: Any = config.new_client_from_config
        return factory(config_file=str(self.kubeconfig_path))

    def dynamic_client(self) -> Any:
        """Return a ``kubernetes.dynamic.DynamicClient`` for the cluster."""
        from kubernetes import dynamic

        factory: Any = dynamic.DynamicClient
        return factory(self.api_client())


def _create_namespace(api_client: Any, name: str) -> None:
    from kubernetes import client

    body: Any = {"metadata": {"name": name}}
    client.CoreV1Api(api_client).create_namespace(body)


@pytest.fixture
def apiserver() -> Iterator[ApiServer]:
    """Yield a fresh API server double, started on a free port and stopped afterwards."""
    with ApiServer() as server:
        yield server


@pytest.fixture(scope="module")
def shared_apiserver() -> Iterator[ApiServer]:
    """Yield one double for a whole test module (starting one per test costs ~50 ms)."""
    with ApiServer() as server:
        yield server


@pytest.fixture
def api(shared_apiserver: ApiServer) -> ApiServer:
    """Return the module's double, emptied: no objects, faults or logged requests."""
    shared_apiserver.reset()
    return shared_apiserver


@pytest.fixture
def kube() -> Iterator[KubeTarget]:
    """Yield a cluster with a fresh namespace: the double, or ``$SPECC_TEST_KUBECONFIG``'s cluster."""
    namespace = f"specc-test-{uuid.uuid4().hex[:8]}"
    real = os.environ.get(KUBECONFIG_ENV)
    if real:
        target = KubeTarget(Path(real), namespace)
        api_client = target.api_client()
        _create_namespace(api_client, namespace)
        try:
            yield target
        finally:
            from kubernetes import client

            client.CoreV1Api(api_client).delete_namespace(namespace)
        return
    with ApiServer() as server:
        target = KubeTarget(server.kubeconfig_path, namespace, server)
        _create_namespace(server.api_client(), namespace)
        yield target
