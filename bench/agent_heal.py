"""Healing drift with a running agent: watch-driven vs polling, on a 5,000-object inventory.

One fleet of 1,000 ``Service`` apps (Deployment, Service, ConfigMap, HPA, PDB each:
5,000 members), one API server double, one run. The agent applies it once, then runs
twice over the same cluster:

- **watch**: the agent as it ships (watches every group-kind, heals one object alone,
  ``--resync 600`` as the backstop);
- **polling**: ``--no-watch``, the agent healing only at its full resyncs
  (``--resync`` seconds, ``--poll-resync``, default 30 so the run ends in minutes).

For each: API requests per minute at steady state (the agent's requests only, counted
by the double, over ``--steady`` seconds with nothing changing), then ``--drifts``
injected drifts, half ``kubectl delete``-like deletions of a Deployment, half edits of
a field specc owns (a ConfigMap value, merge-patched by another field manager); heal
latency is from the drift's write returning to the double's store holding the
desired state again (read in process, so checking costs no requests). Watch drifts
are injected one at a time; polling drifts at random times across several resyncs.

    python bench/agent_heal.py [--services 1000] [--drifts 100] [--steady 60]
                               [--poll-resync 30]

Leader election is off (one replica): a Lease renewal adds 2 requests every
lease-duration/3 seconds (24/min at the default 15 s) to either mode.
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sync_vs_kubectl import TEAM, write_fleet

from specc.agent import Agent, AgentOptions
from specc.source import GitSourceOptions
from specc.sync import Cluster, ClusterOptions, SyncOptions
from specc.testing import ApiServer

ACTOR = "bench-actor"


def git(cwd: Path, *args: str) -> None:
    env = {
        "GIT_AUTHOR_NAME": "b",
        "GIT_AUTHOR_EMAIL": "b@x",
        "GIT_COMMITTER_NAME": "b",
        "GIT_COMMITTER_EMAIL": "b@x",
        "PATH": "/usr/bin:/bin",
    }
    subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)


def make_repo(base: Path, services: int) -> Path:
    remote, work = base / "remote.git", base / "work"
    git(base, "init", "--bare", "-q", "-b", "main", str(remote))
    git(base, "init", "-q", "-b", "main", str(work))
    write_fleet(work / "fleet", services)
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "fleet")
    git(work, "push", "-q", str(remote), "main")
    return remote


def agent_for(api: ApiServer, remote: Path, workdir: Path, **kw: Any) -> Agent:
    cluster = Cluster(api.api_client(), ClusterOptions())
    options = AgentOptions(
        source=GitSourceOptions(url=str(remote), workdir=workdir),
        cluster="bench",
        interval=600.0,
        listen=None,
        leader_election=False,
        sync=SyncOptions(concurrency=8),
        **kw,
    )
    return Agent(options, cluster)


def agent_requests(api: ApiServer, since: int) -> list[Any]:
    return [r for r in api.requests[since:] if r.user_agent != ACTOR]


class Actor:
    """The out-of-band hand: deletes Deployments and edits ConfigMaps over HTTP."""

    def __init__(self, api: ApiServer) -> None:
        client = api.api_client()
        client.user_agent = ACTOR
        self.api = api
        self.cluster = Cluster(client)

    def _stored(self, group: str, plural: str, name: str) -> dict[str, Any] | None:
        store = self.api.cluster.store
        with store.lock:
            return store.get((group, plural), (TEAM, name))

    def drift(self, i: int, names: list[str]) -> Callable[[], bool]:
        """Make drift ``i``; return a check that is true once it is healed."""
        name = names[i % len(names)]
        if i % 2 == 0:
            before = self._stored("apps", "deployments", name)
            assert before is not None
            uid = before["metadata"]["uid"]
            res = self.cluster.resource("apps/v1", "Deployment")
            assert res is not None
            self.cluster.request("delete", "DELETE", res.path(TEAM, name))

            def healed() -> bool:
                now = self._stored("apps", "deployments", name)
                return now is not None and now["metadata"]["uid"] != uid

            return healed
        config = self._config_of(name)
        path = f"/api/v1/namespaces/{TEAM}/configmaps/{config}"
        self.cluster.request(
            "patch",
            "PATCH",
            path,
            [("fieldManager", "kubectl-edit")],
            {"data": {"LEVEL": "debug"}},
            "application/merge-patch+json",
        )

        def restored() -> bool:
            now = self._stored("", "configmaps", config)
            return now is not None and (now.get("data") or {}).get("LEVEL") == "info"

        return restored

    def _config_of(self, name: str) -> str:
        store = self.api.cluster.store
        with store.lock:
            for (ns, cm), _ in store._objects.get(("", "configmaps"), {}).items():
                if ns == TEAM and cm.startswith(f"{name}-config-"):
                    return cm
        raise KeyError(name)


def wait(check: Callable[[], bool], timeout: float) -> float | None:
    started = time.perf_counter()
    while not check():
        if time.perf_counter() - started > timeout:
            return None
        time.sleep(0.002)
    return time.perf_counter() - started


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run_agent(agent: Agent) -> threading.Thread:
    thread = threading.Thread(target=agent.run, daemon=True)
    thread.start()
    return thread


def steady(api: ApiServer, seconds: float) -> tuple[float, dict[str, int]]:
    mark = len(api.requests)
    time.sleep(seconds)
    reqs = agent_requests(api, mark)
    verbs: dict[str, int] = {}
    for r in reqs:
        verbs[r.verb] = verbs.get(r.verb, 0) + 1
    return len(reqs) * 60.0 / seconds, verbs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--drifts", type=int, default=100)
    parser.add_argument("--steady", type=float, default=60.0)
    parser.add_argument("--poll-resync", type=float, default=30.0)
    args = parser.parse_args()
    rng = random.Random(16)
    names = [f"svc-{i:04d}" for i in range(args.services)]
    rng.shuffle(names)
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp, ApiServer() as api:
        base = Path(tmp)
        remote = make_repo(base, args.services)
        actor = Actor(api)

        # -- watch ------------------------------------------------------------------------
        agent = agent_for(api, remote, base / "w", resync=600.0)
        started = time.perf_counter()
        thread = run_agent(agent)
        if wait(lambda: bool(agent.healer.watch.group_kinds), 600) is None:
            sys.exit("the first sync did not finish")
        kinds = len(agent.healer.watch.group_kinds)
        wait(lambda: api.log.count("watch") >= kinds, 120)
        members = sum(1 for r in api.requests if r.verb == "apply")
        print(f"first sync + watches up: {time.perf_counter() - started:.1f} s, "
              f"{members} applies, {kinds} group-kinds watched", flush=True)  # fmt: skip
        per_min, verbs = steady(api, args.steady)
        latencies = []
        mark = len(api.requests)
        for i in range(args.drifts):
            healed = actor.drift(i, names)
            took = wait(healed, 30)
            if took is None:
                sys.exit(f"watch: drift {i} not healed in 30 s")
            latencies.append(took)
            time.sleep(0.25)  # past the debounce: drifts one at a time
        heal_requests = len(agent_requests(api, mark))
        results["watch"] = {
            "per_min": per_min,
            "verbs": verbs,
            "lat": latencies,
            "heal_requests": heal_requests / args.drifts,
        }
        agent.stop.set()
        thread.join(timeout=30)

        # -- polling ----------------------------------------------------------------------
        agent = agent_for(api, remote, base / "p", resync=args.poll_resync, watch=False)
        thread = run_agent(agent)
        wait(lambda: agent.last_render is not None, 600)
        per_min, verbs = steady(api, max(args.steady, 2 * args.poll_resync))
        mark = len(api.requests)
        pending: list[tuple[float, Callable[[], bool]]] = []
        latencies = []
        span = 4 * args.poll_resync
        times = sorted(rng.uniform(0, span) for _ in range(args.drifts))
        t0 = time.perf_counter()
        i = 0
        while i < len(times) or pending:
            now = time.perf_counter() - t0
            while i < len(times) and times[i] <= now:
                pending.append((time.perf_counter(), actor.drift(i, names)))
                i += 1
            still = []
            for at, check in pending:
                if check():
                    latencies.append(time.perf_counter() - at)
                else:
                    still.append((at, check))
            pending = still
            if now > span + 3 * args.poll_resync + 60:
                sys.exit(f"polling: {len(pending)} drifts not healed")
            time.sleep(0.005)
        registry = agent.metrics.registry
        syncs = registry.get_sample_value("specc_sync_duration_seconds_count", {"cluster": "bench"})
        total = registry.get_sample_value("specc_sync_duration_seconds_sum", {"cluster": "bench"})
        print(f"polling: {syncs:.0f} full syncs, {total / (syncs or 1):.2f} s each on average")
        results["polling"] = {
            "per_min": per_min,
            "verbs": verbs,
            "lat": latencies,
            "heal_requests": len(agent_requests(api, mark)) / args.drifts,
        }
        agent.stop.set()
        thread.join(timeout=30)

    print()
    print(f"{args.services * 5:,} members, {args.drifts} drifts each "
          f"(half Deployment deletions, half owned-field edits)")  # fmt: skip
    print("| mode | heal p50 | heal p99 | max | requests/min, steady | requests per drift |")
    print("|---|---|---|---|---|---|")
    for mode, r in results.items():
        lat = r["lat"]
        label = mode if mode == "watch" else f"polling (--resync {args.poll_resync:g})"
        print(
            f"| {label} | {statistics.median(lat):.3f} s | {pct(lat, 0.99):.3f} s | "
            f"{max(lat):.3f} s | {r['per_min']:.1f} | {r['heal_requests']:.1f} |"
        )
    for mode, r in results.items():
        print(f"{mode}: steady-state requests by verb: {r['verbs'] or 'none'}")


if __name__ == "__main__":
    main()
