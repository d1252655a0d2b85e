"""Soak: the agent applies 50 successive commits with drift injected between them.

The API server double runs in a process of its own, so this process's memory is the
agent's. Every commit converges (plan in sync, inventory equal to the commit), every
injected drift is healed, and the agent's resident memory stays flat after warm-up.
Marked ``slow``: about 35 s.
"""

from __future__ import annotations

import gc
import random
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from specc.agent import Agent, AgentOptions
from specc.pipeline import render_path
from specc.source import GitSourceOptions
from specc.sync import Cluster, ClusterOptions, SyncOptions, plan_cluster
from specc.sync.inventory import PART_OF, ApplySetParent
from tests import fleetgen
from tests.reliability import inventory_problems, record
from tests.test_agent import git

COMMITS = 50
APPS = 50
#: Growth of resident memory allowed between the 10th and the last commit.
MEMORY_GROWTH_MB = 40


def rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


@pytest.fixture
def double(tmp_path: Path) -> Iterator[Path]:
    """Run the double as a process; yield its kubeconfig."""
    if not Path("/proc/self/status").exists():
        pytest.skip("needs /proc to read resident memory")
    kubeconfig = tmp_path / "kubeconfig"
    proc = subprocess.Popen(
        [sys.executable, "-m", "specc.testing.apiserver", "--kubeconfig", str(kubeconfig)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().startswith("http")
        yield kubeconfig
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def connect(kubeconfig: Path) -> Cluster:
    options = ClusterOptions(kubeconfig=str(kubeconfig), backoff=0.01)
    return Cluster.connect(options)


def inject_drift(cluster: Cluster, rng: random.Random) -> str:
    """Change or delete one of specc's objects the way people and controllers do."""
    parent = ApplySetParent.for_cluster(fleetgen.CLUSTER)
    selector = f"{PART_OF}={parent.id}"
    kind = rng.choice(["delete-deployment", "image", "scale", "delete-configmap", "label"])
    if kind in ("delete-deployment", "image"):
        res = cluster.resource("apps/v1", "Deployment")
    elif kind == "scale":
        res = cluster.resource("apps/v1", "StatefulSet")
    elif kind == "delete-configmap":
        res = cluster.resource("v1", "ConfigMap")
    else:
        res = cluster.resource("v1", "Service")
    assert res is not None
    items = [o for o in cluster.list(res, selector) if o["metadata"]["namespace"] != "specc-system"]
    obj = rng.choice(items)
    meta = obj["metadata"]
    path = res.path(meta["namespace"], meta["name"])
    if kind.startswith("delete"):
        cluster.request("delete", "DELETE", path)
    else:
        patch = {
            "image": {"spec": {"template": {"spec": {"containers": [
                {"name": meta["name"], "image": "evil.example/miner:1"}]}}}},
            "scale": {"spec": {"replicas": 7}},
            "label": {"metadata": {"labels": {"app.kubernetes.io/managed-by": "helm"}}},
        }[kind]  # fmt: skip
        content = "application/strategic-merge-patch+json"
        manager = f"kubectl-{kind}"
        cluster.request("patch", "PATCH", path, [("fieldManager", manager)], patch, content)
    return kind


@pytest.mark.slow
def test_fifty_commits_with_drift_converge_and_memory_stays_flat(
    double: Path, tmp_path: Path
) -> None:
    remote, work = tmp_path / "remote.git", tmp_path / "work"
    git(tmp_path, "init", "--bare", "--quiet", "-b", "main", str(remote))
    git(tmp_path, "init", "--quiet", "-b", "main", str(work))
    git(work, "remote", "add", "origin", str(remote))
    fleetgen.write_fleet(work / "fleet", APPS)

    def commit(message: str) -> str:
        git(work, "add", "-A")
        git(work, "commit", "--quiet", "-m", message)
        git(work, "push", "--quiet", "origin", "main")
        return git(work, "rev-parse", "HEAD")

    commit("initial fleet")
    cluster = connect(double)
    agent = Agent(
        AgentOptions(
            source=GitSourceOptions(url=str(remote), workdir=tmp_path / "mirror"),
            cluster=fleetgen.CLUSTER,
            resync=0.0,
            listen=None,
            leader_election=False,
            sync=SyncOptions(concurrency=4),
        ),
        connect(double),
    )
    assert agent.step() == "applied"

    rng = random.Random(2026)
    drift: Counter[str] = Counter()
    memory: list[float] = []
    started = time.monotonic()
    for i in range(1, COMMITS + 1):
        fleetgen.revise(work / "fleet", i, rng)
        head = commit(f"commit {i}")
        drift[inject_drift(cluster, rng)] += 1
        assert agent.step() == "applied", f"commit {i}"
        # Drift after the apply: the next step with no new commit heals it.
        drift[inject_drift(cluster, rng)] += 1
        assert agent.step() == "healed", f"drift after commit {i}"
        _, (render,) = render_path(work / "fleet", [fleetgen.CLUSTER])
        assert plan_cluster(cluster, render)[0].in_sync, f"commit {i} did not converge"
        assert inventory_problems(cluster, render) == [], f"commit {i}"
        assert agent.last_applied == head
        gc.collect()
        memory.append(rss_mb())
    seconds = time.monotonic() - started
    growth = memory[-1] - memory[9]
    record(
        "soak",
        commits=COMMITS,
        drift_injected=sum(drift.values()),
        drift_kinds=dict(drift),
        seconds=round(seconds, 1),
        rss_mb_at_10=round(memory[9], 1),
        rss_mb_at_end=round(memory[-1], 1),
        rss_mb_max=round(max(memory), 1),
    )
    assert growth < MEMORY_GROWTH_MB, f"resident memory grew {growth:.0f} MB: {memory}"
    # Resident memory can step up once (allocator arenas); it must not keep climbing.
    late = memory[25:]
    assert max(late) - min(late) < MEMORY_GROWTH_MB
