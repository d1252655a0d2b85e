"""Fault injection: a fleet syncs through 20% injected 429/500/503/504/dropped connections.

Each run syncs commit A, then commit B (images rolled, a config changed so its hashed
ConfigMap is replaced, an app removed and one added), both under faults, on a cluster
that also holds objects specc does not own. It converges within the client's bounded
retries, writes nothing it does not own, and deletes nothing B declares.

The default run uses a 50-app fleet; the ``slow`` run the 500-app benchmark size.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from specc.objects import ClusterRender
from specc.pipeline import render_path
from specc.sync import SyncOptions, plan_cluster, sync
from specc.testing import ApiServer, FaultRule
from tests import fleetgen
from tests.reliability import (
    Sleeps,
    audit,
    connect,
    create_foreign,
    deleted_targets,
    foreign_changes,
    inventory_problems,
    record,
    seed_faults,
    target_of,
)

#: Each rule fires on its own draw: 1 - (1 - 0.045)**5 ≈ 20.6% of requests get a fault.
RATE = 0.045


@pytest.fixture(scope="module")
def server() -> Iterator[ApiServer]:
    if os.environ.get("SPECC_TEST_KUBECONFIG"):
        pytest.skip("fault injection needs the double")
    with ApiServer() as srv:
        yield srv


def commits(root: Path, apps: int) -> tuple[ClusterRender, ClusterRender]:
    fleetgen.write_fleet(root, apps)
    _, (a,) = render_path(root, [fleetgen.CLUSTER])
    fleetgen.revise(root, 3, random.Random(3))
    _, (b,) = render_path(root, [fleetgen.CLUSTER])
    return a, b


def inject(api: ApiServer, seed: int, timeouts: bool) -> list[FaultRule]:
    seed_faults(api, seed)
    rules = [
        api.faults.add("/api*", status=429, rate=RATE, retry_after=1),
        # A 500 that says "try again" (ServerTimeout); one without a hint is final.
        api.faults.add("/api*", status=500, rate=RATE, retry_after=1),
        api.faults.add("/api*", status=503, rate=RATE, retry_after=1),
        api.faults.add("/api*", status=504, rate=RATE),
        api.faults.add("/api*", drop=True, rate=RATE),
    ]
    if timeouts:
        # Slower than the client waits: the write may land after the client gave up.
        rules.append(api.faults.add("/api*", latency=0.6, rate=0.005))
    return rules


def run_under_faults(api: ApiServer, root: Path, apps: int, seed: int) -> dict[str, float]:
    api.reset()
    a, b = commits(root, apps)
    setup = connect(api)
    foreign = create_foreign(setup, "team-00")
    since = len(api.requests)
    rules = inject(api, seed, timeouts=True)
    sleeps = Sleeps()
    cluster = connect(api, timeout=0.4, sleeps=sleeps)

    started = time.monotonic()
    first = sync(cluster, a, SyncOptions(commit="a"))
    # A write the client gave up on lands when its latency is over. Syncs of an agent are
    # far apart; these ones, with the sleeps skipped, are not: without the wait, a late
    # apply of A lands after B pruned its object (seen as "member ... is not declared").
    api.wait_idle()
    second = sync(cluster, b, SyncOptions(commit="b"))
    api.wait_idle()
    seconds = time.monotonic() - started
    faults = sum(r.fired for r in rules)
    api.faults.clear()

    assert first.ok, [r.to_dict() for r in first.results if r.outcome == "failed"]
    assert second.ok, [r.to_dict() for r in second.results if r.outcome == "failed"]
    # Converged: a fresh plan finds nothing to do, and the inventory is B exactly.
    assert plan_cluster(setup, b)[0].in_sync
    assert inventory_problems(setup, b) == []
    # Nothing specc does not own was written, changed or deleted.
    report = audit(api, setup, [a, b], b, since)
    assert report.foreign_writes == []
    assert foreign_changes(setup, foreign) == []
    # Only what A declared and B does not was deleted.
    assert report.wrongful_deletes == []
    gone = {target_of(setup, o) for o in a.objects} - {target_of(setup, o) for o in b.objects}
    assert deleted_targets(api, since) <= gone
    assert second.counts()["pruned"] > 0
    # Bounded: every retry answers one injected fault, and none gave up.
    assert 0 < cluster.stats.retries <= faults
    figures: dict[str, float] = {
        "apps": apps,
        "objects": len(b.objects),
        "requests": sum(cluster.stats.requests.values()),
        "faults_injected": faults,
        "retries": cluster.stats.retries,
        "backoff_seconds": round(sleeps.total, 1),
        "wall_seconds": round(seconds, 2),
        "pruned": second.counts()["pruned"],
        "wrongly_deleted": len(report.wrongful_deletes),
        "foreign_writes": len(report.foreign_writes),
    }
    record("faults", **figures)
    return figures


def test_a_fleet_converges_through_20_percent_faults_touching_only_its_own_objects(
    server: ApiServer, tmp_path: Path
) -> None:
    figures = run_under_faults(server, tmp_path / "fleet", 50, 1)
    assert figures["faults_injected"] >= 50


@pytest.mark.slow
@pytest.mark.parametrize("seed", [2, 3, 4])
def test_more_seeds_of_the_50_app_fleet_converge_through_faults(
    server: ApiServer, tmp_path: Path, seed: int
) -> None:
    run_under_faults(server, tmp_path / "fleet", 50, seed)


@pytest.mark.slow
def test_the_500_app_benchmark_fleet_converges_through_20_percent_faults(
    server: ApiServer, tmp_path: Path
) -> None:
    figures = run_under_faults(server, tmp_path / "fleet", 500, 500)
    assert figures["faults_injected"] >= 500


def test_every_injected_fault_costs_exactly_one_retry(server: ApiServer, tmp_path: Path) -> None:
    """A third of the applies fail with 503 and are retried; the retries are exactly the faults."""
    server.reset()
    a, _ = commits(tmp_path / "fleet", 10)
    cluster = connect(server)
    rule = server.faults.add("/api*", method="PATCH", status=503, rate=0.3)
    seed_faults(server, 11)
    result = sync(cluster, a)
    assert result.ok, [r.to_dict() for r in result.results if r.outcome == "failed"]
    assert rule.fired > 0
    assert cluster.stats.retries == rule.fired


def test_a_persistent_outage_fails_the_sync_without_pruning(
    server: ApiServer, tmp_path: Path
) -> None:
    """When retries run out the sync reports failure, and prunes nothing."""
    server.reset()
    a, b = commits(tmp_path / "fleet", 10)
    assert sync(connect(server), a).ok
    since = len(server.requests)
    server.faults.add("/apis/apps/*", method="PATCH", status=503, retry_after=0)
    cluster = connect(server, retries=3)
    result = sync(cluster, b)
    assert not result.ok
    assert deleted_targets(server, since) == set()
    assert all(r.outcome != "pruned" for r in result.results)
    server.faults.clear()
    again = sync(connect(server), b)
    assert again.ok and again.counts()["pruned"] > 0
