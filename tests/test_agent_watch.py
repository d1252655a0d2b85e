"""Watch-driven healing: a running agent heals a kubectl delete or edit within seconds.

The out-of-band actor is the real kubectl against the API server double; the agent runs
with a resync of an hour, so only its watches can explain a heal.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from specc.agent import Agent
from specc.healer import HealOptions
from specc.objects import ObjectKey
from specc.sync import Cluster
from specc.sync.watch import InventoryWatch, WatchOptions
from specc.testing import ApiServer
from specc.testing.pytest_plugin import KubeTarget
from tests.test_agent import Repo, make_agent

IMAGE = "ghcr.io/acme/storefront-web:2.14.1"


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    r = Repo(tmp_path)
    r.commit("initial fleet")
    return r


def _wait_for(check: Callable[[], object], timeout: float = 20.0) -> float:
    """Wait until ``check()`` is true; return the seconds it took."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"condition not met within {timeout:g} s")
        time.sleep(0.01)
    return time.monotonic() - started


@pytest.fixture
def running(api: ApiServer, repo: Repo, tmp_path: Path) -> Iterator[Callable[..., Agent]]:
    started: list[tuple[Agent, threading.Thread]] = []

    def start(**kw: object) -> Agent:
        agent = make_agent(
            api, repo, tmp_path / f"a{len(started)}", interval=600.0, resync=3600.0, listen=None
        )
        agent = Agent(replace(agent.options, **kw), agent.cluster)  # type: ignore[arg-type]
        thread = threading.Thread(target=agent.run, daemon=True)
        thread.start()
        started.append((agent, thread))
        _wait_for(lambda: agent.ready.is_set() and agent.healer.watch.group_kinds)
        # Every watch has listed and is watching: drift from here on is seen.
        _wait_for(lambda: api.log.count("watch") >= len(agent.healer.watch.group_kinds))
        return agent

    yield start
    for agent, thread in started:
        agent.stop.set()
        thread.join(timeout=10)
        assert not thread.is_alive()


def kubectl(api: ApiServer, *args: str) -> str:
    out = subprocess.run(
        ["kubectl", "--kubeconfig", str(api.kubeconfig_path), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def _live(api: ApiServer, kind: str, ns: str, name: str) -> dict | None:  # type: ignore[type-arg]
    return Cluster(api.api_client()).get(
        "apps/v1" if kind == "Deployment" else "v1", kind, ns, name
    )


def _image(api: ApiServer) -> str | None:
    live = _live(api, "Deployment", "storefront", "web")
    if live is None:
        return None
    return str(live["spec"]["template"]["spec"]["containers"][0]["image"])


def test_a_kubectl_delete_is_healed_within_two_seconds(
    api: ApiServer, running: Callable[..., Agent]
) -> None:
    agent = running()
    before = _live(api, "Deployment", "storefront", "web")
    assert before is not None
    kubectl(api, "delete", "deployment", "web", "-n", "storefront")
    took = _wait_for(lambda: _live(api, "Deployment", "storefront", "web") is not None)
    assert took < 2.0, f"healed after {took:.2f} s"
    after = _live(api, "Deployment", "storefront", "web")
    assert after is not None and after["metadata"]["uid"] != before["metadata"]["uid"]
    assert _image(api) == IMAGE
    assert api.log.count("list") == 0 or agent.next_resync > time.monotonic()


def test_a_kubectl_edit_of_an_owned_field_is_healed_within_two_seconds(
    api: ApiServer, running: Callable[..., Agent]
) -> None:
    running()
    kubectl(
        api,
        "set",
        "image",
        "deployment/web",
        "web=ghcr.io/acme/storefront-web:6.6.6",
        "-n",
        "storefront",
    )
    took = _wait_for(lambda: _image(api) == IMAGE)
    assert took < 2.0, f"healed after {took:.2f} s"


@pytest.mark.double_only("counts the agent's writes in the double's request log")
def test_an_edit_of_a_field_specc_does_not_own_triggers_no_write(
    api: ApiServer, running: Callable[..., Agent]
) -> None:
    running()
    mark = len(api.requests)
    # The Deployment is under an HPA: specc sets no replicas, so scaling it is not drift.
    kubectl(api, "scale", "deployment/web", "--replicas=5", "-n", "storefront")
    kubectl(api, "annotate", "deployment/web", "-n", "storefront", "example.com/note=hello")
    # Then real drift of another Deployment: its events come after the edit's on the same
    # watch, so once it is healed the edit has been seen (and, rightly, ignored).
    kubectl(api, "delete", "deployment", "specc-agent", "-n", "platform")
    _wait_for(lambda: _live(api, "Deployment", "platform", "specc-agent") is not None)
    agent_requests = [r for r in api.requests[mark:] if not r.user_agent.startswith("kubectl")]
    touched = {(r.verb, r.name) for r in agent_requests if r.verb in ("apply", "patch", "get")}
    assert not [r for r in agent_requests if r.name == "web" and r.resource == "deployments"]
    assert ("apply", "specc-agent") in touched
    live = _live(api, "Deployment", "storefront", "web")
    assert live is not None and live["spec"]["replicas"] == 5
    assert live["metadata"]["annotations"]["example.com/note"] == "hello"


@pytest.mark.double_only("reads the double's request log")
def test_steady_state_makes_no_list_between_resyncs(
    api: ApiServer, running: Callable[..., Agent]
) -> None:
    # Watches the server ends every second or two are resumed, not relisted.
    api.bookmark_interval = 0.2
    agent = running(heal=HealOptions(watch=WatchOptions(timeout=1)))
    kinds = len(agent.healer.watch.group_kinds)
    # Each watch starts with its LIST; under load some start after `running` returns.
    _wait_for(lambda: len({r.resource for r in api.requests if r.verb == "watch"}) >= kinds, 30)
    mark = len(api.requests)
    _wait_for(lambda: sum(r.verb == "watch" for r in api.requests[mark:]) >= 2 * kinds, 30)
    since = api.requests[mark:]
    assert not [r for r in since if r.verb == "list"], "a LIST between resyncs"
    assert not [r for r in since if r.verb in ("apply", "patch", "create", "delete")]
    # Only watches (and nothing else: no leader election here, no fetch due).
    assert {r.verb for r in since} <= {"watch"}
    api.bookmark_interval = 60.0


@pytest.mark.double_only("drops watches and compacts the double's event log")
def test_a_dropped_watch_relists_after_410_gone_and_heals_what_it_missed(
    api: ApiServer, running: Callable[..., Agent]
) -> None:
    agent = running(heal=HealOptions(watch=WatchOptions(timeout=1, backoff=0.1, max_backoff=0.5)))
    rule = api.faults.add("/apis/apps/v1/deployments", method="GET", drop=True)
    _wait_for(lambda: rule.fired >= 1)  # the deployments watch is down and retrying
    kubectl(api, "delete", "deployment", "web", "-n", "storefront")
    with api.cluster.store.lock:
        api.cluster.store.compact()  # the version the watch was at is gone: 410 on resume
    api.faults.clear()
    _wait_for(lambda: _live(api, "Deployment", "storefront", "web") is not None, 20)
    lists = [r for r in api.requests if r.verb == "list" and r.resource == "deployments"]
    assert len(lists) >= 2  # the first LIST and the relist after 410
    assert agent.healer.watch.group_kinds


@pytest.mark.double_only("injects an ERROR event into the watch stream")
def test_a_watch_failing_with_error_events_backs_off(api: ApiServer) -> None:
    """Seen: an ERROR event other than 410 (a conversion webhook down, a decode error) was
    not counted as a failure, so the watch listed again every half second, forever."""
    cluster = Cluster(api.api_client())
    resource = cluster.resource("apps/v1", "Deployment")
    assert resource is not None
    rule = api.faults.add("/apis/apps/v1/deployments", method="GET", status=500, in_stream=True)
    restarts: list[str] = []
    watch = InventoryWatch(
        cluster,
        "example=1",
        lambda _kind, _obj: None,
        lambda _gk, _items: None,
        lambda _gk, why: restarts.append(why),
        WatchOptions(timeout=30, backoff=0.1, max_backoff=5.0),
    )
    watch.ensure({"Deployment.apps": resource})
    try:
        time.sleep(3.0)
    finally:
        watch.close(wait=2.0)
    lists = [r for r in api.requests if r.verb == "list" and r.resource == "deployments"]
    # Backing off from 0.1 s (doubling, ±50 %): about 5 rounds in 3 s, not 20 or more.
    assert rule.fired >= 2 and set(restarts) == {"error"}
    assert len(lists) <= 8, len(lists)


def test_a_deleted_object_is_drift_in_the_plan(api: ApiServer, repo: Repo, tmp_path: Path) -> None:
    from specc.pipeline import render_path
    from specc.sync import plan_cluster

    agent = make_agent(api, repo, tmp_path, watch=False)
    assert agent.step() == "applied"
    kubectl(api, "delete", "deployment", "web", "-n", "storefront")
    _, (render,) = render_path(repo.work / "fleet", ["dev"])
    plan = plan_cluster(Cluster(api.api_client()), render)[0]
    (entry,) = [
        e for e in plan.entries if e.key == ObjectKey("apps", "Deployment", "storefront", "web")
    ]
    assert entry.action == "create" and entry.deleted and entry.reason == "deleted out of band"
    assert entry in plan.drifted
    assert plan.to_dict()["entries"][plan.entries.index(entry)]["deletedOutOfBand"] is True
    from specc.sync import sync

    result = sync(Cluster(api.api_client()), render)
    (done,) = [r for r in result.results if r.key == entry.key]
    assert (done.outcome, done.message) == ("created", "deleted out of band")
    assert [str(e.key) for e in result.plan.drifted] == ["Deployment/storefront/web"]


def test_the_healer_heals_a_kubectl_delete_and_edit_on_both_tiers(kube: KubeTarget) -> None:
    """The watches and the targeted heal against the real kube-apiserver too (one set of tests)."""
    from specc.errors import Position
    from specc.healer import Healer
    from specc.objects import ClusterRender, DesiredObject
    from specc.sync import ClusterOptions, SyncOptions, sync
    from specc.sync.inventory import ApplySetParent

    ns = kube.namespace
    cluster = Cluster.connect(ClusterOptions(kubeconfig=str(kube.kubeconfig_path)))
    objects = [
        DesiredObject(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": name, "namespace": ns},
                "data": {"k": "v"},
            },
            Position("apps/app.yaml", 3, 1),
            "Manifests/team/app",
        )
        for name in ("gone", "edited")
    ]
    render = ClusterRender("dev", "1.33", objects, fleet="acme")
    options = SyncOptions(parent_namespace=ns)
    assert sync(cluster, render, options).ok
    wake = threading.Event()
    healer = Healer(cluster, ApplySetParent.for_cluster("dev", "acme", ns), wake.set)
    healer.arm(render, time.monotonic())
    try:
        _wait_for(lambda: cluster.stats.requests["watch"] >= 1)
        cfg = str(kube.kubeconfig_path)
        run = ["kubectl", "--kubeconfig", cfg, "-n", ns]
        subprocess.run([*run, "delete", "configmap", "gone"], check=True, capture_output=True)
        subprocess.run(
            [*run, "patch", "configmap", "edited", "--type", "merge", "-p", '{"data":{"k":"x"}}'],
            check=True,
            capture_output=True,
        )
        started = time.monotonic()

        def healed() -> bool:
            # The agent's loop in small: heal what is due whenever a watch wakes it.
            wake.wait(0.05)
            wake.clear()
            for drift in healer.take(time.monotonic()) or []:
                healer.heal(drift, options)
            gone = cluster.get("v1", "ConfigMap", ns, "gone")
            edited = cluster.get("v1", "ConfigMap", ns, "edited") or {}
            return gone is not None and edited.get("data") == {"k": "v"}

        _wait_for(healed, 20)
        took = time.monotonic() - started
        assert took < 2.0, f"{kube.tier}: healed after {took:.2f} s"
    finally:
        healer.disarm()


def test_the_agents_own_writes_for_a_new_commit_are_not_drift(
    api: ApiServer, repo: Repo, running: Callable[..., Agent]
) -> None:
    from tests.test_agent import status

    agent = running()
    repo.edit("apps/storefront/web.yaml", "LOG_FORMAT: json", "LOG_FORMAT: logfmt")
    repo.edit("apps/storefront/catalog.yaml", "replicas: 2", "replicas: 4")
    head = repo.commit("more logs")
    agent.trigger.set()  # as POST /hook does
    _wait_for(lambda: status(api).get("lastAppliedCommit") == head)
    # The watches saw every write of that sync; none of them is drift of the new commit.
    kubectl(api, "delete", "deployment", "web", "-n", "storefront")
    _wait_for(lambda: _live(api, "Deployment", "storefront", "web") is not None)
    samples = {
        s.labels["kind"]: s.value
        for m in agent.metrics.registry.collect()
        if m.name == "specc_drift_events"
        for s in m.samples
        if s.name.endswith("_total")
    }
    assert samples == {"deleted": 1.0}
    web = _live(api, "Deployment", "storefront", "web")
    assert web is not None
    env = web["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "LOG_FORMAT", "value": "logfmt"} in env  # healed to the new commit


@pytest.mark.double_only("counts the agent's applies in the double's request log")
def test_a_field_fought_over_by_another_controller_backs_off(
    api: ApiServer, running: Callable[..., Agent]
) -> None:
    running(heal=HealOptions(burst=3, backoff=1.0))
    fighter = Cluster(api.api_client())
    path = "/apis/apps/v1/namespaces/storefront/deployments/web"
    mark = len(api.requests)
    started = time.monotonic()
    fights = 0
    while time.monotonic() - started < 4.0:
        image = f"ghcr.io/acme/storefront-web:fight-{fights}"
        patch = {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": image}]}}}}
        fighter.request(
            "patch", "PATCH", path, [("fieldManager", "fighter")], patch,
            "application/strategic-merge-patch+json",
        )  # fmt: skip
        fights += 1
        time.sleep(0.1)
    heals = [
        r for r in api.requests[mark:]
        if r.verb == "apply" and r.name == "web" and r.resource == "deployments"
        and r.query.get("dryRun") != "All"
    ]  # fmt: skip
    # 3 heals at once, then one after 1 s and one 2 s later: not one per fight.
    assert 3 <= len(heals) <= 7, (len(heals), fights)
    assert fights >= 20


@pytest.mark.double_only("injects a failure into the heal's apply")
def test_a_heal_that_fails_is_retried_without_another_event(
    api: ApiServer, running: Callable[..., Agent]
) -> None:
    running()
    rule = api.faults.add(
        "/apis/apps/v1/namespaces/storefront/deployments/web", method="PATCH", status=500, times=1
    )
    kubectl(api, "delete", "deployment", "web", "-n", "storefront")
    took = _wait_for(lambda: _live(api, "Deployment", "storefront", "web") is not None, 20)
    assert rule.fired == 1  # the first apply failed; the retry, a second later, healed it
    assert took >= 0.5


@pytest.mark.double_only("injects a failure into the heal's GET")
def test_a_heal_whose_get_fails_is_retried_without_another_event(
    api: ApiServer, running: Callable[..., Agent]
) -> None:
    """Seen: an error reading the object (500, a dropped connection) escaped the heal, so
    that drift (and every other one taken with it) waited for the next resync."""
    running()
    rule = api.faults.add(
        "/apis/apps/v1/namespaces/storefront/deployments/web", method="GET", status=500, times=1
    )
    Cluster(api.api_client()).delete(
        ObjectKey("apps", "Deployment", "storefront", "web"), "apps/v1"
    )

    def stored() -> bool:  # not by GET: the test's own GET would take the fault
        with api.cluster.store.lock:
            items = api.cluster.store.items(("apps", "deployments"), "storefront")
        return any(o["metadata"]["name"] == "web" for o in items)

    _wait_for(stored, 20)
    assert rule.fired == 1


def test_a_running_agent_heals_on_both_tiers(kube: KubeTarget, tmp_path: Path) -> None:
    """The whole agent, its parent in the test's namespace, against the double and kube-apiserver."""
    from specc.agent import AgentOptions
    from specc.source import GitSourceOptions
    from specc.sync import ClusterOptions, SyncOptions
    from tests.test_agent import git

    ns = kube.namespace
    work, remote = tmp_path / "work", tmp_path / "remote.git"
    git(tmp_path, "init", "--bare", "--quiet", "-b", "main", str(remote))
    git(tmp_path, "init", "--quiet", "-b", "main", str(work))
    (work / "fleet/teams").mkdir(parents=True)
    (work / "fleet/apps").mkdir()
    (work / "fleet/fleet.yaml").write_text(
        "apiVersion: specc.dev/v1alpha1\nkind: Fleet\nmetadata: {name: acme}\n"
        "spec:\n  environments: [{name: dev}]\n"
        "  clusters: [{name: dev, environment: dev, kubernetesVersion: '1.33'}]\n"
    )
    (work / "fleet/teams/t.yaml").write_text(
        f"apiVersion: specc.dev/v1alpha1\nkind: Team\nmetadata: {{name: {ns}}}\nspec: {{}}\n"
    )
    (work / "fleet/apps/m.yaml").write_text(
        "apiVersion: specc.dev/v1alpha1\nkind: Manifests\n"
        f"metadata: {{name: m, team: {ns}}}\n"
        "spec:\n  objects:\n"
        "  - {apiVersion: v1, kind: ConfigMap, metadata: {name: gone}, data: {k: v}}\n"
        "  - {apiVersion: v1, kind: ConfigMap, metadata: {name: edited}, data: {k: v}}\n"
    )
    git(work, "add", "-A")
    git(work, "commit", "--quiet", "-m", "fleet")
    git(work, "push", "--quiet", str(remote), "main")
    cluster = Cluster.connect(ClusterOptions(kubeconfig=str(kube.kubeconfig_path)))
    agent = Agent(
        AgentOptions(
            source=GitSourceOptions(url=str(remote), workdir=tmp_path / "mirror"),
            cluster="dev",
            interval=600.0,
            resync=3600.0,
            listen=None,
            leader_election=False,
            # Not the team's namespace: tenancy keeps teams out of the agent's own.
            sync=SyncOptions(parent_namespace=f"{ns}-inventory"),
        ),
        cluster,
    )
    thread = threading.Thread(target=agent.run, daemon=True)
    thread.start()
    try:
        _wait_for(lambda: agent.healer.watch.group_kinds, 60)
        _wait_for(lambda: cluster.stats.requests["watch"] >= len(agent.healer.watch.group_kinds))
        run = ["kubectl", "--kubeconfig", str(kube.kubeconfig_path), "-n", ns]
        subprocess.run([*run, "delete", "configmap", "gone"], check=True, capture_output=True)
        subprocess.run(
            [*run, "patch", "configmap", "edited", "--type", "merge", "-p", '{"data":{"k":"x"}}'],
            check=True,
            capture_output=True,
        )
        check = Cluster.connect(ClusterOptions(kubeconfig=str(kube.kubeconfig_path)))

        def healed() -> bool:
            edited = check.get("v1", "ConfigMap", ns, "edited") or {}
            return bool(check.get("v1", "ConfigMap", ns, "gone")) and edited.get("data") == {
                "k": "v"
            }

        took = _wait_for(healed, 20)
        assert took < 2.0, f"{kube.tier}: healed after {took:.2f} s"
    finally:
        agent.stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()
