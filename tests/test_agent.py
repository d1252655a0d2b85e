"""The agent end to end: a local bare git repository, the API server double, real HTTP."""

from __future__ import annotations

import hashlib
import hmac
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import replace
from pathlib import Path

import pytest

from specc.agent import Agent, AgentOptions
from specc.agentserver import verify_signature
from specc.source import GitSourceOptions
from specc.sync import Cluster, ClusterOptions, SyncOptions
from specc.sync.apply import read_status
from specc.sync.inventory import ApplySetParent
from specc.testing import ApiServer

ROOT = Path(__file__).resolve().parent.parent
CLUSTER = "dev"


def git(cwd: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@x",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@x",
    }
    out = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


class Repo:
    """A bare 'remote' and a work tree that pushes to it."""

    def __init__(self, base: Path) -> None:
        self.remote = base / "remote.git"
        self.work = base / "work"
        git(base, "init", "--bare", "--quiet", "-b", "main", str(self.remote))
        git(base, "init", "--quiet", "-b", "main", str(self.work))
        git(self.work, "remote", "add", "origin", str(self.remote))
        shutil.copytree(ROOT / "fleet", self.work / "fleet")
        # The double serves no prometheus-operator CRDs unless the fleet installs them.
        (self.work / "fleet/apps/storefront/monitoring.yaml").unlink(missing_ok=True)

    def commit(self, message: str, push: bool = True, force: bool = False) -> str:
        git(self.work, "add", "-A")
        git(self.work, "commit", "--quiet", "--allow-empty", "-m", message)
        if push:
            git(self.work, "push", "--quiet", *(["--force"] if force else []), "origin", "main")
        return git(self.work, "rev-parse", "HEAD")

    def edit(self, rel: str, old: str, new: str) -> None:
        path = self.work / "fleet" / rel
        text = path.read_text()
        assert old in text
        path.write_text(text.replace(old, new, 1))


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    r = Repo(tmp_path)
    r.commit("initial fleet")
    return r


def make_agent(api: ApiServer, repo: Repo, workdir: Path, **kw: object) -> Agent:
    cluster = Cluster(api.api_client(), ClusterOptions(backoff=0.001), sleep=lambda _: None)
    options = AgentOptions(
        source=GitSourceOptions(url=str(repo.remote), workdir=workdir / "mirror"),
        cluster=CLUSTER,
        interval=0.05,
        resync=0.0,
        listen=("127.0.0.1", 0),
        leader_election=False,
        lease_duration=1.0,
        sync=SyncOptions(concurrency=4),
    )
    return Agent(replace(options, **kw), cluster)  # type: ignore[arg-type]


def status(api: ApiServer) -> dict[str, str]:
    return read_status(Cluster(api.api_client()), ApplySetParent.for_cluster(CLUSTER))


def test_a_new_commit_is_applied_and_shows_in_status_and_metrics(
    api: ApiServer, repo: Repo, tmp_path: Path
) -> None:
    agent = make_agent(api, repo, tmp_path)
    head = git(repo.work, "rev-parse", "HEAD")
    assert agent.step() == "applied"
    assert status(api)["lastAppliedCommit"] == head
    port = agent.serve()
    try:
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode()
        assert f'specc_applied_revision_info{{cluster="dev",revision="{head}"}} 1.0' in body
        assert "specc_sync_duration_seconds_count" in body
        assert urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz").status == 200
        assert urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz").status == 200
    finally:
        agent.shutdown_server()

    repo.edit("apps/storefront/catalog.yaml", "replicas: 2", "replicas: 4")
    repo.edit("apps/storefront/web.yaml", "LOG_FORMAT: json", "LOG_FORMAT: logfmt")
    second = repo.commit("more logs")
    assert agent.step() == "applied"
    assert status(api)["lastAppliedCommit"] == second
    assert agent.step() == "unchanged"  # a no-op resync


def test_deleted_or_edited_objects_are_restored_within_one_resync(
    api: ApiServer, repo: Repo, tmp_path: Path
) -> None:
    agent = make_agent(api, repo, tmp_path)
    agent.step()
    cluster = Cluster(api.api_client())
    assert cluster.delete(cluster_key("Deployment", "storefront", "web"), "apps/v1")
    cluster.request(
        "patch",
        "PATCH",
        "/api/v1/namespaces/storefront/services/web",
        [("fieldManager", "kubectl-edit")],
        {"spec": {"type": "NodePort"}},
        "application/merge-patch+json",
    )
    assert agent.step() == "healed"
    assert cluster.get("apps/v1", "Deployment", "storefront", "web") is not None
    svc = cluster.get("v1", "Service", "storefront", "web")
    assert svc is not None and svc["spec"].get("type", "ClusterIP") == "ClusterIP"


def cluster_key(kind: str, ns: str, name: str):  # type: ignore[no-untyped-def]
    from specc.objects import ObjectKey

    return ObjectKey("apps" if kind == "Deployment" else "", kind, ns, name)


def test_a_broken_commit_is_not_applied_and_the_next_good_one_is(
    api: ApiServer, repo: Repo, tmp_path: Path
) -> None:
    agent = make_agent(api, repo, tmp_path)
    good = git(repo.work, "rev-parse", "HEAD")
    agent.step()
    repo.edit("apps/storefront/catalog.yaml", "replicas: 2", "replicas: two")
    broken = repo.commit("typo")
    assert agent.step() == "invalid"
    st = status(api)
    assert st["lastAppliedCommit"] == good and st["lastAttemptedCommit"] == broken
    assert "apps/storefront/catalog.yaml:" in st["lastError"]
    assert agent.step() in ("unchanged", "healed")  # keeps the cluster at the last good commit
    repo.edit("apps/storefront/catalog.yaml", "replicas: two", "replicas: 3")
    fixed = repo.commit("fix")
    assert agent.step() == "applied"
    assert status(api)["lastAppliedCommit"] == fixed
    assert (
        Cluster(api.api_client()).get("apps/v1", "Deployment", "storefront", "catalog") is None
    )  # dev: not placed


def test_a_force_pushed_rewind_is_refused(api: ApiServer, repo: Repo, tmp_path: Path) -> None:
    agent = make_agent(api, repo, tmp_path)
    repo.edit("apps/storefront/web.yaml", "LOG_FORMAT: json", "LOG_FORMAT: text")
    ahead = repo.commit("ahead")
    assert agent.step() == "applied"
    git(repo.work, "reset", "--quiet", "--hard", "HEAD~1")
    repo.edit("apps/storefront/web.yaml", "LOG_FORMAT: json", "LOG_FORMAT: other")
    rewound = repo.commit("rewritten history", force=True)
    assert agent.step() == "rewind"
    st = status(api)
    assert (
        st["lastAppliedCommit"] == ahead
        and st["lastResult"] == "rewind"
        and rewound[:12] in st["lastError"]
    )
    allowing = make_agent(api, repo, tmp_path / "other", allow_rewind=True)
    assert allowing.step() == "applied"


def test_with_signature_verification_an_unsigned_commit_is_refused(
    api: ApiServer, repo: Repo, tmp_path: Path
) -> None:
    keyring = tmp_path / "gnupg"
    keyring.mkdir(mode=0o700)
    agent = make_agent(
        api,
        repo,
        tmp_path,
        verify_signatures=True,
        source=GitSourceOptions(url=str(repo.remote), workdir=tmp_path / "m", keyring=str(keyring)),
    )
    assert agent.step() == "signature"
    assert status(api)["lastResult"] == "signature"
    assert Cluster(api.api_client()).get("apps/v1", "Deployment", "storefront", "web") is None


def test_webhook_needs_a_valid_hmac_and_triggers_a_fetch(
    api: ApiServer, repo: Repo, tmp_path: Path
) -> None:
    agent = make_agent(api, repo, tmp_path, webhook_secret=b"s3cret")
    port = agent.serve()
    try:
        body = b'{"ref":"refs/heads/main"}'
        bad = urllib.request.Request(
            f"http://127.0.0.1:{port}/hook", data=body, headers={"X-Hub-Signature-256": "sha256=00"}
        )
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(bad)
        assert err.value.code == 401 and not agent.trigger.is_set()
        sig = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
        good = urllib.request.Request(
            f"http://127.0.0.1:{port}/hook", data=body, headers={"X-Hub-Signature-256": sig}
        )
        assert urllib.request.urlopen(good).status == 202 and agent.trigger.is_set()
    finally:
        agent.shutdown_server()


@pytest.mark.parametrize(
    ("secret", "header", "ok"),
    [(b"k", None, False), (None, "sha256=ab", False), (b"k", "sha1=ab", False)],
)
def test_signature_check_refuses_missing_parts(
    secret: bytes | None, header: str | None, ok: bool
) -> None:
    assert verify_signature(secret, b"x", header) is ok


def test_two_agents_elect_one_leader_and_the_other_takes_over(
    api: ApiServer, repo: Repo, tmp_path: Path
) -> None:
    a = make_agent(
        api,
        repo,
        tmp_path / "a",
        leader_election=True,
        identity="agent-a",
        interval=0.1,
        resync=60.0,
    )
    b = make_agent(
        api,
        repo,
        tmp_path / "b",
        leader_election=True,
        identity="agent-b",
        interval=0.1,
        resync=60.0,
    )
    threads = [threading.Thread(target=x.run, daemon=True) for x in (a, b)]
    for t in threads:
        t.start()
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not status(api).get("lastAppliedCommit"):
            time.sleep(0.1)
        assert status(api).get("lastAppliedCommit")
        assert a.leading.is_set() != b.leading.is_set()
        leader, follower = (a, b) if a.leading.is_set() else (b, a)
        applies_before = api.log.count("apply")
        time.sleep(0.6)
        assert follower.last_applied == ""  # the standby never synced
        assert api.log.count("apply") == applies_before  # no double applies
        # The leader dies without releasing the lease: the other takes over once it expires.
        leader._elector.release = lambda: None  # type: ignore[method-assign]
        leader.stop.set()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not follower.leading.is_set():
            time.sleep(0.05)
        assert follower.leading.is_set()
    finally:
        a.stop.set()
        b.stop.set()
        for t in threads:
            t.join(timeout=10)


def test_sigterm_during_a_sync_leaves_a_state_the_next_start_converges(
    api: ApiServer, repo: Repo, tmp_path: Path
) -> None:
    # Slow applies: the sync is surely in hand when SIGTERM comes, however loaded the machine.
    api.faults.add("/api*", method="PATCH", latency=0.3)
    cmd = [
        sys.executable, "-m", "specc", "agent", "--repo", str(repo.remote), "--cluster", CLUSTER,
        "--kubeconfig", str(api.kubeconfig_path), "--listen", "127.0.0.1:0", "--workdir", str(tmp_path / "w"),
        "--no-leader-election", "--interval", "0.2",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    deadline = time.monotonic() + 120
    while api.log.count("apply") < 8:
        assert time.monotonic() < deadline and proc.poll() is None, "the sync never started"
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err.decode()[-2000:]
    assert status(api).get("lastResult") != "applied"  # it was stopped mid-sync
    api.faults.clear()
    agent = make_agent(api, repo, tmp_path / "again")
    assert agent.step() in ("applied", "healed")
    from specc.pipeline import render_path
    from specc.sync import plan_cluster

    _, (render,) = render_path(repo.work / "fleet", [CLUSTER])
    assert plan_cluster(Cluster(api.api_client()), render)[0].in_sync
