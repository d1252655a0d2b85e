"""Exit codes of every cluster command for every failure class, like `kubectl diff`.

0 in sync / converged, 1 differences or objects failed or refused, 2 errors (usage,
kubeconfig, connection, credentials, the identity guard). `sync --dry-run` prints and
exits exactly as `plan`. One row per failure class; the commands run in the order of
``ORDER`` against one state, so each row also shows what `status` says before and after
the sync.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from specc.sync import Cluster
from tests.clusters import (
    Clusters,
    closed_port_url,
    kubeconfig_for,
    run,
    silent_server,
    two_clusters,
)

ORDER = ("plan", "sync --dry-run", "diff --cluster", "status", "sync", "status after")
ARGS = {
    "plan": ["plan"],
    "sync --dry-run": ["sync", "--dry-run"],
    "diff --cluster": ["diff"],
    "status": ["status"],
    "sync": ["sync"],
    "status after": ["status"],
}


@pytest.fixture
def clusters(tmp_path: Path) -> Iterator[Clusters]:
    yield from two_clusters(tmp_path)


@pytest.fixture
def fleet(fleet: Path) -> Path:
    (fleet / "apps/storefront/monitoring.yaml").unlink()
    return fleet


def synced(c: Clusters, fleet: Path) -> None:
    result = run("sync", str(fleet), "--cluster", "dev", "--kubeconfig", str(c.dev_only))
    assert result.exit_code == 0, result.output


def in_sync(c: Clusters, fleet: Path, tmp: Path) -> list[str]:
    synced(c, fleet)
    return ["--cluster", "dev", "--kubeconfig", str(c.dev_only)]


def differences(c: Clusters, fleet: Path, tmp: Path) -> list[str]:
    return ["--cluster", "dev", "--kubeconfig", str(c.dev_only)]


def refused_object(c: Clusters, fleet: Path, tmp: Path) -> list[str]:
    synced(c, fleet)
    cluster = Cluster(c.dev.api_client())
    # A Helm release owns an object the commit declares (a new app's ConfigMap).
    (fleet / "apps/storefront/notes.yaml").write_text(
        "apiVersion: specc.dev/v1alpha1\nkind: Manifests\nmetadata: {name: notes, team: storefront}\n"
        "spec:\n  objects:\n    - apiVersion: v1\n      kind: ConfigMap\n"
        "      metadata: {name: web-notes}\n      data: {a: b}\n"
    )
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": "web-notes",
                "namespace": "storefront",
                "labels": {"app.kubernetes.io/managed-by": "Helm"},
                "annotations": {"meta.helm.sh/release-name": "notes"},
            },
            "data": {"a": "helm"},
        },
        force=True,
        manager="helm",
    )
    return ["--cluster", "dev", "--kubeconfig", str(c.dev_only)]


def prune_refused(c: Clusters, fleet: Path, tmp: Path) -> list[str]:
    synced(c, fleet)
    for team in ("storefront", "payments"):
        shutil.rmtree(fleet / "apps" / team)
        (fleet / "teams" / f"{team}.yaml").unlink()
    return ["--cluster", "dev", "--kubeconfig", str(c.dev_only)]


def unknown_cluster(c: Clusters, fleet: Path, tmp: Path) -> list[str]:
    return ["--cluster", "nope", "--kubeconfig", str(c.dev_only)]


def several_contexts(c: Clusters, fleet: Path, tmp: Path) -> list[str]:
    return ["--cluster", "prod-eu", "--kubeconfig", str(c.multi)]


def connection_refused(c: Clusters, fleet: Path, tmp: Path) -> list[str]:
    config = kubeconfig_for(tmp / "refused.yaml", closed_port_url())
    return ["--cluster", "dev", "--kubeconfig", str(config), "--connect-timeout", "0.5"]


def unauthenticated(c: Clusters, fleet: Path, tmp: Path) -> list[str]:
    c.dev.faults.add("/api*", status=401)
    return ["--cluster", "dev", "--kubeconfig", str(c.dev_only)]


def forbidden(c: Clusters, fleet: Path, tmp: Path) -> list[str]:
    c.dev.faults.add("/api/v1/namespaces/specc-system/configmaps", method="GET", status=403)
    return ["--cluster", "dev", "--kubeconfig", str(c.dev_only)]


def identity_guard(c: Clusters, fleet: Path, tmp: Path) -> list[str]:
    synced(c, fleet)
    return ["--cluster", "staging", "--kubeconfig", str(c.multi), "--context", "kind-dev"]


Arrange = Callable[[Clusters, Path, Path], list[str]]

#: failure class → (arrange, exit codes in ORDER).
TABLE: dict[str, tuple[Arrange, tuple[int, ...]]] = {
    "in sync": (in_sync, (0, 0, 0, 0, 0, 0)),
    "differences": (differences, (1, 1, 1, 1, 0, 0)),
    "refused object": (refused_object, (1, 1, 1, 0, 1, 1)),
    "prune refused": (prune_refused, (1, 1, 1, 0, 1, 0)),
    "usage: unknown cluster": (unknown_cluster, (2,) * 6),
    "usage: several contexts": (several_contexts, (2,) * 6),
    "connection refused": (connection_refused, (2,) * 6),
    "authentication": (unauthenticated, (2,) * 6),
    "authorization": (forbidden, (2,) * 6),
    "identity guard": (identity_guard, (2,) * 6),
}


@pytest.mark.parametrize("case", list(TABLE))
def test_exit_code_table(case: str, clusters: Clusters, fleet: Path, tmp_path: Path) -> None:
    arrange, expected = TABLE[case]
    args = arrange(clusters, fleet, tmp_path)
    got = {}
    for name in ORDER:
        result = run(*ARGS[name], str(fleet), *args, home=tmp_path)
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            name,
            result.exception,
        )
        got[name] = result.exit_code
        if name == "plan":
            plan_out = (result.exit_code, result.stdout)
        if name == "sync --dry-run":
            # --dry-run is plan: same stdout, same code.
            assert (result.exit_code, result.stdout) == plan_out
    assert tuple(got[n] for n in ORDER) == expected, got


def test_a_server_that_accepts_and_never_answers_exits_2_quickly(
    fleet: Path, tmp_path: Path
) -> None:
    with silent_server() as url:
        config = kubeconfig_for(tmp_path / "silent.yaml", url)
        for command in (["plan"], ["sync"], ["status"], ["diff"]):
            result = run(
                *command, str(fleet), "--cluster", "dev", "--kubeconfig", str(config),
                "--connect-timeout", "0.5",
            )  # fmt: skip
            assert result.exit_code == 2, result.output
            assert f"{url}: no answer within 0.5 s (--connect-timeout)" in result.stderr


@pytest.mark.slow
def test_with_default_timeouts_a_silent_server_fails_plan_within_60_seconds(
    fleet: Path, tmp_path: Path
) -> None:
    import time

    with silent_server() as url:
        config = kubeconfig_for(tmp_path / "silent.yaml", url)
        started = time.monotonic()
        result = run("plan", str(fleet), "--cluster", "dev", "--kubeconfig", str(config))
        took = time.monotonic() - started
    assert result.exit_code == 2, result.output
    assert "no answer within 10 s" in result.stderr
    assert took < 60
