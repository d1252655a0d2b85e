"""Pytest fixtures for the API server double and for a real control plane.

Register it in a ``conftest.py``::

    pytest_plugins = ["specc.testing.pytest_plugin"]

``apiserver`` and ``api`` are always the double (fault injection, request log). ``kube``
is parametrized over two tiers, so one test runs twice: ``[double]`` against the double
and ``[real]`` against a real kube-apiserver, etcd and kube-controller-manager
(:mod:`specc.testing.kube`, one per test session, RBAC and PodSecurity on), or against
the cluster ``$SPECC_TEST_KUBECONFIG`` names. Either way it offers a fresh namespace and
the same client factories. A test that only holds on the double (it injects faults or
reads the request log) is marked ``@pytest.mark.double_only("why")`` and runs once.
``real_kube`` is the real tier alone (RBAC tests).

The real tier is skipped, with the reason, when its binaries are not built (`python -m
specc.testing.kube build` needs Go); ``SPECC_REQUIRE_REAL=1`` (CI) turns that skip into
a failure. After each real test the objects it left (namespaces, CRDs, cluster roles, any
cluster-scoped object) are deleted, and the namespaces and CRDs waited for, so the next
test starts from the same cluster.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from specc.testing.apiserver import ApiServer

KUBECONFIG_ENV = "SPECC_TEST_KUBECONFIG"
REQUIRE_REAL_ENV = "SPECC_REQUIRE_REAL"
TIERS = ("double", "real")
#: All real tests go to one xdist worker (``--dist loadgroup``): one control plane per run.
REAL_GROUP = "real-control-plane"
TEST_NAMESPACE_PREFIX = "specc-test-"


@dataclass
class KubeTarget:
    """A cluster under test: the double (``server`` set) or a real one (``real`` set)."""

    kubeconfig_path: Path
    namespace: str
    server: ApiServer | None = None
    real: RealCluster | None = None

    @property
    def is_double(self) -> bool:
        """Return whether this is the in-process double (faults and counters available)."""
        return self.server is not None

    @property
    def tier(self) -> str:
        """Return ``double`` or ``real``."""
        return "double" if self.server is not None else "real"

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


@dataclass
class RealCluster:
    """The session's real cluster: its admin kubeconfig and what it held at the start."""

    kubeconfig_path: Path
    plane: Any = None  # a specc.testing.kube.ControlPlane when this session started it
    baseline: set[str] = field(default_factory=set)
    _cluster_scoped: list[tuple[str, str]] = field(default_factory=list)

    def api_client(self) -> Any:
        from kubernetes import config

        factory: Any = config.new_client_from_config
        return factory(config_file=str(self.kubeconfig_path))

    def service_account_kubeconfig(self, namespace: str, name: str, path: Path) -> Path:
        """Write a kubeconfig that authenticates as ServiceAccount ``namespace/name``; return it.

        The token comes from the TokenRequest API (1 hour), as a projected token would.
        """
        import yaml
        from kubernetes import client

        request: Any = {"spec": {"expirationSeconds": 3600}}
        answer: Any = client.CoreV1Api(self.api_client()).create_namespaced_service_account_token(
            name, namespace, request
        )
        token = answer.status.token
        config = yaml.safe_load(self.kubeconfig_path.read_text())
        for user in config["users"]:
            user["user"] = {"token": token}
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)
        return path

    # -- keeping tests apart ------------------------------------------------------

    def _inventory(self, api: Any) -> dict[str, tuple[str, str, str]]:
        """Return uid → (path, kind, name) of every namespace and cluster-scoped object."""
        found: dict[str, tuple[str, str, str]] = {}
        if not self._cluster_scoped:
            self._cluster_scoped = _cluster_scoped_resources(api)
        for path, kind in self._cluster_scoped:
            for item in _get(api, path).get("items") or []:
                meta = item["metadata"]
                found[meta["uid"]] = (path, kind, meta["name"])
        return found

    def record_baseline(self) -> None:
        """Remember what the cluster holds before any test ran."""
        self.baseline = set(self._inventory(self.api_client()))

    def clean(self) -> None:
        """Delete what tests added since the baseline; wait for namespaces and CRDs to go.

        The random per-test namespaces are never reused, so they are not waited for: the
        namespace controller takes about 5 s to empty and remove one.
        """
        api = self.api_client()
        extra = {uid: v for uid, v in self._inventory(api).items() if uid not in self.baseline}
        waits: list[str] = []
        for path, kind, name in extra.values():
            target = f"{path}/{name}"
            _delete(api, target)
            random = kind == "Namespace" and name.startswith(TEST_NAMESPACE_PREFIX)
            if kind in ("Namespace", "CustomResourceDefinition") and not random:
                waits.append(target)
        deadline = time.monotonic() + 120
        while waits and time.monotonic() < deadline:
            waits = [t for t in waits if _exists(api, t)]
            if waits:
                time.sleep(0.2)
        if waits:
            raise AssertionError(f"still present two minutes after deletion: {waits}")


def _request(api: Any, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    import json

    serialized = api.param_serialize(
        method,
        path,
        header_params={"Accept": "application/json", "Content-Type": "application/json"},
        body=body,
        auth_settings=["BearerToken"],
    )
    response = api.call_api(*serialized[:4])
    response.read()
    data = json.loads(response.data) if response.data else {}
    return int(response.status), data


def _get(api: Any, path: str) -> Any:
    status, data = _request(api, "GET", path)
    if status != 200:
        raise AssertionError(f"GET {path}: {status} {data}")
    return data


def _exists(api: Any, path: str) -> bool:
    return _request(api, "GET", path)[0] != 404


def _delete(api: Any, path: str) -> None:
    body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}
    status, data = _request(api, "DELETE", path, body)
    if status not in (200, 202, 404, 409):
        raise AssertionError(f"DELETE {path}: {status} {data}")


#: Cluster-scoped kinds that belong to the cluster, not to a test.
_NOT_TEST_STATE = {"Node", "ComponentStatus", "CertificateSigningRequest", "APIService"}


def _cluster_scoped_resources(api: Any) -> list[tuple[str, str]]:
    """Return (collection path, kind) of every listable, deletable cluster-scoped resource."""
    out: list[tuple[str, str]] = []
    versions = [("/api/v1", "v1")]
    for group in _get(api, "/apis").get("groups") or []:
        preferred = group["preferredVersion"]["groupVersion"]
        versions.append((f"/apis/{preferred}", preferred))
    for base, _ in versions:
        for resource in _get(api, base).get("resources") or []:
            verbs = set(resource.get("verbs") or [])
            if (
                "/" in resource["name"]
                or resource.get("namespaced")
                or not {"list", "delete"} <= verbs
                or resource["kind"] in _NOT_TEST_STATE
            ):
                continue
            out.append((f"{base}/{resource['name']}", resource["kind"]))
    return out


def _create_namespace(api_client: Any, name: str) -> None:
    from kubernetes import client

    body: Any = {"metadata": {"name": name}}
    client.CoreV1Api(api_client).create_namespace(body)


def _unavailable(reason: str) -> None:
    if os.environ.get(REQUIRE_REAL_ENV) == "1":
        pytest.fail(f"real tier required ({REQUIRE_REAL_ENV}=1) but unavailable: {reason}")
    pytest.skip(f"real tier: {reason}")


@pytest.fixture(scope="session")
def real_cluster() -> Iterator[RealCluster]:
    """Yield the session's real cluster, started on first use and stopped at the end."""
    external = os.environ.get(KUBECONFIG_ENV)
    if external:
        cluster = RealCluster(Path(external))
        cluster.record_baseline()
        yield cluster
        return
    from specc.testing import kube
    from specc.testing.kube.binaries import go_binary

    try:
        found = kube.cached()
        if found is None:
            go_binary()  # raises with the reason when Go is missing
            _unavailable(
                f"kube-apiserver {kube.KUBERNETES_VERSION} is not built; "
                "`python -m specc.testing.kube build` builds it (about 6 minutes, once)"
            )
            return
        plane = kube.ControlPlane(found).start()
    except kube.BuildUnavailable as exc:
        _unavailable(str(exc))
        return
    try:
        cluster = RealCluster(plane.kubeconfig_path, plane)
        cluster.record_baseline()
        yield cluster
    finally:
        plane.stop()


@pytest.fixture
def real_kube(real_cluster: RealCluster) -> Iterator[KubeTarget]:
    """Yield the real cluster with a fresh namespace; remove what the test left afterwards."""
    namespace = f"{TEST_NAMESPACE_PREFIX}{uuid.uuid4().hex[:8]}"
    _create_namespace(real_cluster.api_client(), namespace)
    try:
        yield KubeTarget(real_cluster.kubeconfig_path, namespace, real=real_cluster)
    finally:
        real_cluster.clean()


@pytest.fixture
def double_kube() -> Iterator[KubeTarget]:
    """Yield a fresh double with a fresh namespace."""
    namespace = f"{TEST_NAMESPACE_PREFIX}{uuid.uuid4().hex[:8]}"
    with ApiServer() as server:
        _create_namespace(server.api_client(), namespace)
        yield KubeTarget(server.kubeconfig_path, namespace, server)


@pytest.fixture(
    params=[
        pytest.param("double"),
        pytest.param("real", marks=[pytest.mark.real, pytest.mark.xdist_group(REAL_GROUP)]),
    ]
)
def kube(request: pytest.FixtureRequest) -> KubeTarget:
    """Yield a cluster with a fresh namespace: the double, then the real control plane."""
    target: KubeTarget = request.getfixturevalue(f"{request.param}_kube")
    return target


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


# -- hooks ------------------------------------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "real: runs against the real control plane")
    config.addinivalue_line(
        "markers",
        "double_only(reason): holds only on the API server double (faults, request log); "
        "its real-tier variant is not collected",
    )
    # `-n N` means `--dist load`; loadgroup keeps the real tier on one worker, so a run
    # starts one control plane, not one per worker (2 cores: the second would only
    # compete with the first).
    if getattr(config.option, "dist", None) == "load":
        config.option.dist = "loadgroup"


@pytest.hookimpl(tryfirst=True)  # before xdist turns xdist_group marks into node ids
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Drop the real variant of double-only tests; mark every test that uses the real tier."""
    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        callspec = getattr(item, "callspec", None)
        tier = callspec.params.get("kube") if callspec is not None else None
        uses_real = tier == "real" or "real_cluster" in getattr(item, "fixturenames", ())
        if uses_real and tier == "real" and item.get_closest_marker("double_only"):
            dropped.append(item)
            continue
        if uses_real and not item.get_closest_marker("real"):
            item.add_marker(pytest.mark.real)
            item.add_marker(pytest.mark.xdist_group(REAL_GROUP))
        kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
