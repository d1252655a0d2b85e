"""No commit stops the agent: every hostile commit is a recorded refusal, the loop runs on.

The commits are the hostile corpus of ``tests/test_corpus.py`` (each case laid over the
small valid fleet and committed), plus what only a repository can hold: symlinks outside
the fleet folder, a fleet folder that is a symlink, a fleet.yaml without the agent's
cluster. Each is pushed to the branch a running agent follows; the agent must refuse it
with a reason in the parent's status, keep the cluster at the last good commit, and keep
answering ``/healthz`` and ``/readyz``.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from specc.agent import Agent, AgentOptions
from specc.source import GitSourceOptions
from specc.sync import Cluster, ClusterOptions, SyncOptions
from specc.sync.apply import read_status
from specc.sync.inventory import ApplySetParent
from specc.testing import ApiServer
from tests import test_corpus
from tests.test_agent import git

BASE = test_corpus.BASE
CLUSTER = "c1"


@dataclass(frozen=True)
class Commit:
    name: str
    #: What the refusal is recorded as (``lastResult``) and a fragment of ``lastError``.
    result: str
    message: str
    #: Changes the repository's work tree (its root holds the fleet in ``fleet/``).
    build: Callable[[Path], None]


def _in_fleet(case: test_corpus.Case) -> Callable[[Path], None]:
    return lambda work: case.build(work / "fleet")


def _link(rel: str, target: str) -> Callable[[Path], None]:
    def build(work: Path) -> None:
        (work / rel).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, work / rel)

    return build


def _fleet_is_a_link(work: Path) -> None:
    shutil.move(work / "fleet", work / "real-fleet")
    os.symlink("/etc", work / "fleet")


def _rename_cluster(work: Path) -> None:
    path = work / "fleet/fleet.yaml"
    path.write_text(path.read_text().replace("name: c1", "name: c1-renamed"))


def _remove_fleet_yaml(work: Path) -> None:
    (work / "fleet/fleet.yaml").unlink()


def _remove_fleet(work: Path) -> None:
    shutil.rmtree(work / "fleet")
    (work / "README").write_text("nothing here\n")


def _both(*steps: Callable[[Path], None]) -> Callable[[Path], None]:
    def build(work: Path) -> None:
        for step in steps:
            step(work)

    return build


REPOSITORY_COMMITS = [
    Commit("absolute-symlink-outside-the-fleet", "applied", "", _link("docs/passwd", "/etc/passwd")),
    Commit("symlink-leaving-the-repository", "applied", "", _link("docs/up", "../" * 40 + "etc")),
    Commit("absolute-symlink-in-the-fleet", "invalid", "leaves the fleet root",
           _link("fleet/apps/alpha/passwd.yaml", "/etc/passwd")),
    Commit("symlinked-folder-leaving-the-repository", "invalid", "leaves the fleet root",
           _link("fleet/apps/up", "../" * 40 + "etc")),
    Commit("fleet-folder-is-a-symlink", "invalid", "is a symlink or a file, not a folder", _fleet_is_a_link),
    Commit("cluster-renamed-in-fleet-yaml", "cluster-unknown", "has no cluster 'c1'", _rename_cluster),
    Commit("fleet-yaml-removed", "invalid", "fleet.yaml is missing", _remove_fleet_yaml),
    Commit("fleet-folder-removed", "invalid", "no folder 'fleet'", _remove_fleet),
    Commit("override-object-without-kind", "invalid", "object needs kind",
           _in_fleet(next(c for c in test_corpus.CASES if c.name == "manifests-override-missing-kind"))),
    Commit("symlinks-and-a-renamed-cluster", "cluster-unknown", "has no cluster",
           _both(_link("x/abs", "/"), _rename_cluster)),
]  # fmt: skip

#: Corpus cases git cannot commit (it stores no FIFOs).
UNCOMMITTABLE = {"fifo-app-file", "fifo-config-file", "fifo-manifests-file"}
CORPUS_COMMITS = [
    Commit(f"corpus-{c.name}", "invalid", c.message, _in_fleet(c))
    for c in test_corpus.CASES
    if c.name not in UNCOMMITTABLE
]
#: A sample of the corpus for the default run; the slow run pushes every case.
QUICK = {
    "corpus-symlink-config-to-etc-shadow",
    "corpus-symlink-loop-app",
    "corpus-manifests-cluster-role",
    "corpus-yaml-python-tag",
    "corpus-type-replicas-string",
    "corpus-big-name",
}


class FleetRepo:
    """A bare remote and a work tree holding the corpus base fleet in ``fleet/``."""

    def __init__(self, base: Path) -> None:
        self.remote = base / "remote.git"
        self.work = base / "work"
        git(base, "init", "--bare", "--quiet", "-b", "main", str(self.remote))
        git(base, "init", "--quiet", "-b", "main", str(self.work))
        git(self.work, "remote", "add", "origin", str(self.remote))
        shutil.copytree(BASE, self.work / "fleet")
        self.good = self.commit("good")

    def commit(self, message: str) -> str:
        git(self.work, "add", "-A")
        git(self.work, "commit", "--quiet", "--allow-empty", "-m", message)
        git(self.work, "push", "--quiet", "--force", "origin", "main")
        return git(self.work, "rev-parse", "HEAD")

    def reset(self) -> None:
        """Put the work tree back to the good commit (history keeps growing)."""
        for child in self.work.iterdir():
            if child.name != ".git":
                shutil.rmtree(
                    child
                ) if child.is_dir() and not child.is_symlink() else child.unlink()
        git(self.work, "checkout", "--quiet", self.good, "--", ".")


@pytest.fixture
def running(api: ApiServer, tmp_path: Path) -> Iterator[tuple[Agent, FleetRepo, int]]:
    repo = FleetRepo(tmp_path)
    cluster = Cluster(api.api_client(), ClusterOptions(backoff=0.001), sleep=lambda _: None)
    agent = Agent(
        AgentOptions(
            source=GitSourceOptions(url=str(repo.remote), workdir=tmp_path / "agent" / "repo"),
            cluster=CLUSTER,
            interval=0.05,
            resync=3600.0,
            listen=("127.0.0.1", 0),
            leader_election=False,
            allow_rewind=True,  # every case is a sibling of the good commit
            sync=SyncOptions(concurrency=4),
        ),
        cluster,
    )
    thread = threading.Thread(target=agent.run, daemon=True)
    thread.start()
    try:
        status = _wait_for(api, lambda st: st.get("lastAppliedCommit") == repo.good)
        assert status["lastResult"] == "applied"
        port = _port(agent)
        yield agent, repo, port
    finally:
        agent.stop.set()
        thread.join(timeout=10)
        assert not thread.is_alive()


def _status(api: ApiServer) -> dict[str, str]:
    return read_status(Cluster(api.api_client()), ApplySetParent.for_cluster(CLUSTER))


def _wait_for(
    api: ApiServer, done: Callable[[dict[str, str]], bool], timeout: float = 30
) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = _status(api)
        if done(st):
            return st
        time.sleep(0.05)
    raise AssertionError(f"status never reached the expected state: {_status(api)}")


def _port(agent: Agent) -> int:
    deadline = time.monotonic() + 5
    while agent._server.port is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert agent._server.port is not None
    return agent._server.port


def _get(port: int, path: str) -> int:
    return int(urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5).status)


def _push_and_check(
    api: ApiServer, agent: Agent, repo: FleetRepo, port: int, commit: Commit
) -> None:
    repo.reset()
    commit.build(repo.work)
    sha = repo.commit(commit.name)
    st = _wait_for(api, lambda s: s.get("lastAttemptedCommit") == sha)
    assert st["lastResult"] == commit.result, (commit.name, st)
    if commit.result == "applied":
        assert st["lastAppliedCommit"] == sha
    else:
        assert st["lastAppliedCommit"] != sha
        # The status keeps the head of a long error; the agent's log has all of it.
        assert commit.message in agent.refused[sha], (commit.name, agent.refused[sha][:500])
        assert agent.refused[sha].startswith(st["lastError"][:1000])
        assert "Traceback" not in st["lastError"]
    assert agent._loop_alive(), f"{commit.name}: the agent's loop stopped"
    assert _get(port, "/healthz") == 200 and _get(port, "/readyz") == 200, commit.name


def test_the_agent_refuses_hostile_repository_content_and_keeps_running(
    running: tuple[Agent, FleetRepo, int], api: ApiServer
) -> None:
    agent, repo, port = running
    for commit in REPOSITORY_COMMITS:
        _push_and_check(api, agent, repo, port, commit)
    # The cluster still holds the good fleet's objects.
    assert Cluster(api.api_client()).get("apps/v1", "Deployment", "alpha", "web") is not None


def test_the_agent_refuses_a_sample_of_the_corpus_and_keeps_running(
    running: tuple[Agent, FleetRepo, int], api: ApiServer
) -> None:
    agent, repo, port = running
    sample = [c for c in CORPUS_COMMITS if c.name in QUICK]
    assert len(sample) == len(QUICK)
    for commit in sample:
        _push_and_check(api, agent, repo, port, commit)


@pytest.mark.slow
def test_the_agent_refuses_every_committable_corpus_case_and_keeps_running(
    running: tuple[Agent, FleetRepo, int], api: ApiServer
) -> None:
    agent, repo, port = running
    for commit in CORPUS_COMMITS:
        _push_and_check(api, agent, repo, port, commit)
