"""Crash consistency: a sync killed after any number of writes leaves a state the next converges.

Hypothesis picks where the API server stops answering (the double's "kill after N
writes"), possibly several times in a row, during the first sync of a fleet or during
the update to the next commit (applies, then prunes). After the server comes back, one
clean sync converges to the commit; at no point is an object the commit declares
deleted, and the ApplySet inventory agrees with the cluster. A second test SIGKILLs a
``specc sync`` process mid-run.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from specc.errors import SpeccError
from specc.objects import ClusterRender
from specc.pipeline import render_path
from specc.sync import SyncOptions, plan_cluster, sync
from specc.testing import ApiServer
from tests import fleetgen
from tests.reliability import (
    audit,
    connect,
    deleted_targets,
    inventory_problems,
    record,
    target_of,
    writes,
)

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Commits:
    root: Path
    a: ClusterRender
    b: ClusterRender
    #: Writes an uninterrupted sync makes: empty → A, and A → B.
    first_writes: int
    update_writes: int


@pytest.fixture(scope="module")
def server() -> Iterator[ApiServer]:
    if os.environ.get("SPECC_TEST_KUBECONFIG"):
        pytest.skip("kills the double")
    with ApiServer() as srv:
        yield srv


def make_commits(server: ApiServer, root: Path, apps: int) -> Commits:
    fleetgen.write_fleet(root, apps)
    _, (a,) = render_path(root, [fleetgen.CLUSTER])
    fleetgen.revise(root, 3, random.Random(5))
    fleetgen.revise(root, 6, random.Random(6))
    _, (b,) = render_path(root, [fleetgen.CLUSTER])
    # Counted as the kill switch counts: successful writes, dry-runs left out.
    server.reset()
    assert sync(connect(server), a).ok
    first = len(writes(server))
    since = len(server.requests)
    assert sync(connect(server), b).ok
    update = len(writes(server, since))
    return Commits(root, a, b, first, update)


@pytest.fixture(scope="module")
def small(server: ApiServer, tmp_path_factory: pytest.TempPathFactory) -> Commits:
    return make_commits(server, tmp_path_factory.mktemp("crash") / "fleet", 12)


def killed_sync(server: ApiServer, render: ClusterRender, after: int, commit: str) -> bool:
    """Sync with the server dying after ``after`` writes; return whether it crashed."""
    server.faults.kill_after_writes(after)
    cluster = connect(server, retries=1, timeout=2)
    try:
        result = sync(cluster, render, SyncOptions(commit=commit))
        crashed = not result.ok
    except SpeccError:
        crashed = True
    finally:
        server.faults.revive()
    return crashed


def crash_scenario(server: ApiServer, c: Commits, update: bool, kills: list[float]) -> int:
    """Run one scenario; return how many syncs crashed. Fails on any broken promise."""
    server.reset()
    if update:
        assert sync(connect(server), c.a, SyncOptions(commit="a")).ok
    target = c.b if update else c.a
    total = c.update_writes if update else c.first_writes
    since = len(server.requests)
    crashes = 0
    for share in kills:
        crashes += killed_sync(server, target, int(share * total), "b" if update else "a")
    cluster = connect(server)
    final = sync(cluster, target, SyncOptions(commit="b" if update else "a"))
    assert final.ok, [r.to_dict() for r in final.results if r.outcome == "failed"]
    assert plan_cluster(cluster, target)[0].in_sync
    assert inventory_problems(cluster, target) == []
    report = audit(server, cluster, [c.a, c.b], target, since)
    assert report.wrongful_deletes == []
    assert report.foreign_writes == []
    if update:
        gone = {target_of(cluster, o) for o in c.a.objects} - {
            target_of(cluster, o) for o in c.b.objects
        }
        assert deleted_targets(server, since) <= gone
    else:
        assert report.deletes == 0
    return crashes


def run_crash_property(
    server: ApiServer, c: Commits, examples: int, name: str, update: bool | None = None
) -> None:
    figures: Counter[str] = Counter()
    updates = st.booleans() if update is None else st.just(update)

    @settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
        database=None,
    )
    @given(
        update=updates,
        # Where the server dies, as a share of the writes a whole sync makes (> 1: never).
        kills=st.lists(st.floats(0.0, 1.1), min_size=1, max_size=3),
    )
    def scenario(update: bool, kills: list[float]) -> None:
        figures["scenarios"] += 1
        figures["crashes"] += crash_scenario(server, c, update, kills)

    scenario()
    record(name, objects=len(c.b.objects), wrongly_deleted=0, **figures)


def test_a_sync_killed_after_any_write_converges_on_the_next_run(
    server: ApiServer, small: Commits
) -> None:
    run_crash_property(server, small, 15, "crash")


@pytest.mark.slow
@pytest.mark.parametrize("update", [False, True], ids=["first-sync", "update"])
def test_many_kill_points_in_a_50_app_fleet_converge(
    server: ApiServer, tmp_path: Path, update: bool
) -> None:
    commits = make_commits(server, tmp_path / "fleet", 50)
    run_crash_property(server, commits, 60, f"crash-slow-{'update' if update else 'first'}", update)


def test_every_kill_point_of_an_update_converges(server: ApiServer, small: Commits) -> None:
    """Not sampled: each write of the A → B update, one at a time."""
    crashes = 0
    for n in range(small.update_writes):
        crashes += crash_scenario(server, small, True, [n / small.update_writes])
    assert crashes == small.update_writes
    record("crash-exhaustive", crashes=crashes, scenarios=small.update_writes, wrongly_deleted=0)


@pytest.mark.parametrize("applies", [3, 30, 60])
def test_sigkill_of_a_specc_sync_process_leaves_a_state_the_next_sync_converges(
    server: ApiServer, small: Commits, applies: int
) -> None:
    """The first sync of the fleet (about 70 writes) is killed after ``applies`` applies."""
    server.reset()
    since = len(server.requests)
    start = server.log.count("apply")
    # Slow writes down so that the kill lands mid-sync.
    server.faults.add("/api*", method="PATCH", latency=0.01)
    cmd = [
        sys.executable, "-m", "specc", "sync", str(small.root), "--cluster", fleetgen.CLUSTER,
        "--kubeconfig", str(server.kubeconfig_path), "--context", "specc-double",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        while server.log.count("apply") - start < applies and time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "the sync ended before the kill"
    server.faults.clear()
    cluster = connect(server)
    final = sync(cluster, small.b)
    assert final.ok, final.to_dict()
    assert plan_cluster(cluster, small.b)[0].in_sync
    assert inventory_problems(cluster, small.b) == []
    report = audit(server, cluster, [small.a, small.b], small.b, since)
    assert report.wrongful_deletes == [] and report.foreign_writes == []
