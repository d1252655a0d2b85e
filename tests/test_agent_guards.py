"""The agent applies the same guards as `specc sync`: a wrong cluster gets no write at all,
another owner's object is refused and recorded, and the commit cannot raise its budget.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from specc.errors import IdentityError
from specc.sync import Cluster, ClusterOptions, PlanOptions, SyncOptions
from specc.testing import ApiServer
from tests.test_agent import Repo, make_agent, status


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    r = Repo(tmp_path)
    r.commit("initial fleet")
    return r


def test_an_agent_pointed_at_another_clusters_server_writes_nothing(
    api: ApiServer, repo: Repo, tmp_path: Path
) -> None:
    assert make_agent(api, repo, tmp_path / "dev").step() == "applied"
    api.log.clear()
    wrong = make_agent(api, repo, tmp_path / "staging", cluster="staging")
    with pytest.raises(IdentityError, match="holds cluster dev of fleet acme"):
        wrong.step()
    # An invalid commit's refusal is a status write too: also refused on the wrong server.
    repo.edit("fleet.yaml", "budget: 0.25", "budget: 7")
    repo.commit("broken")
    with pytest.raises(IdentityError):
        wrong.step()
    assert api.log.writes() == 0


def test_the_agent_refuses_another_owners_object_and_records_it(
    api: ApiServer, repo: Repo, tmp_path: Path
) -> None:
    cluster = Cluster(api.api_client(), ClusterOptions(backoff=0.001), sleep=lambda _: None)
    cluster.apply(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "storefront"}},
        force=True,
        manager="helm",
    )
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": "web",
                "namespace": "storefront",
                "labels": {"app.kubernetes.io/managed-by": "Helm"},
                "annotations": {"meta.helm.sh/release-name": "web"},
            },
            "spec": {"ports": [{"port": 80, "protocol": "TCP"}]},
        },
        force=True,
        manager="helm",
    )
    agent = make_agent(api, repo, tmp_path)
    with pytest.raises(
        Exception, match="Service/storefront/web: owned by Helm release storefront/web"
    ):
        agent.step()
    recorded = status(api)
    assert recorded["lastResult"] == "failed"
    assert "Service/storefront/web: owned by Helm release storefront/web" in recorded["lastError"]
    helm = cluster.get("v1", "Service", "storefront", "web")
    assert helm is not None and helm["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"


def test_a_commit_cannot_raise_the_agents_prune_budget(
    api: ApiServer, repo: Repo, tmp_path: Path
) -> None:
    agent = make_agent(api, repo, tmp_path)
    assert agent.step() == "applied"
    repo.edit("fleet.yaml", "budget: 0.25", "budget: 1.0")
    for team in ("storefront", "payments"):
        shutil.rmtree(repo.work / "fleet/apps" / team)
        (repo.work / "fleet/teams" / f"{team}.yaml").unlink()
    repo.commit("remove most of the fleet, and raise the budget to let it through")
    api.log.clear()
    with pytest.raises(Exception, match="over the budget of 25%"):
        agent.step()
    assert api.log.persisted_writes() == 1  # the refusal's status, nothing else
    assert status(api)["lastResult"] == "failed"
    # The operator's ceiling is the agent's flag, not the commit's.
    wider = make_agent(
        api,
        repo,
        tmp_path / "wider",
        sync=SyncOptions(concurrency=4, plan=PlanOptions(allow_mass_prune=True)),
    )
    assert wider.step() == "applied"
