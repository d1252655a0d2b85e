"""A real Kubernetes control plane for tests, built from the Go module proxy and cached.

For a person::

    python -m specc.testing.kube build                       # once: ~6 min cold, then cached
    python -m specc.testing.kube start --kubeconfig /tmp/kc  # etcd + apiserver + controllers
    KUBECONFIG=/tmp/kc kubectl get ns
    python -m specc.testing.kube stop --kubeconfig /tmp/kc

In-process (what the ``kube`` fixture's ``real`` tier does)::

    with ControlPlane(build()) as plane:
        client = plane.api_client()

:mod:`specc.testing.kube.binaries` makes and caches the binaries,
:mod:`specc.testing.kube.controlplane` runs them, :mod:`specc.testing.kube.pki` makes
the certificates.
"""

from __future__ import annotations

from specc.testing.kube.binaries import (
    ETCD_VERSION,
    KUBERNETES_VERSION,
    Build,
    BuildUnavailable,
    build,
    cache_root,
    cached,
)
from specc.testing.kube.controlplane import (
    ControlPlane,
    ControlPlaneError,
    ControlPlaneOptions,
)

__all__ = [
    "ETCD_VERSION",
    "KUBERNETES_VERSION",
    "Build",
    "BuildUnavailable",
    "ControlPlane",
    "ControlPlaneError",
    "ControlPlaneOptions",
    "build",
    "cache_root",
    "cached",
]
