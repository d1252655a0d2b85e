"""A commit is judged whole (issue 18): what `specc validate` refuses no agent applies.

An error only in another cluster's render (an app placed on staging alone) refuses the
commit on dev as well: the pull request's gate and every agent give one verdict, and a
half-good commit is not applied to some clusters and not others.
"""

from __future__ import annotations

from pathlib import Path

from specc.sync import Cluster
from specc.sync.apply import read_status
from specc.sync.inventory import ApplySetParent
from specc.testing import ApiServer
from tests.clusters import run
from tests.test_agent import CLUSTER, Repo, make_agent

STAGING_ONLY = """\
apiVersion: specc.dev/v1alpha1
kind: Manifests
metadata: {name: staging-only, team: storefront}
spec:
  objects:
    - apiVersion: v1
      kind: ConfigMap
      metadata: {name: staging-only}
      data:
        replicas: [1, 2]
placement:
  environments: [staging]
"""


def test_an_error_only_in_another_clusters_render_refuses_the_commit_everywhere(
    api: ApiServer, tmp_path: Path
) -> None:
    repo = Repo(tmp_path)
    good = repo.commit("initial fleet")
    agent = make_agent(api, repo, tmp_path)
    assert agent.step() == "applied"

    repo.edit("apps/storefront/web.yaml", "LOG_FORMAT: json", "LOG_FORMAT: text")
    (repo.work / "fleet/apps/storefront/staging-only.yaml").write_text(STAGING_ONLY)
    bad = repo.commit("an app for staging with a schema error")
    fleet = str(repo.work / "fleet")
    dev = run("render", fleet, "--cluster", CLUSTER, "-o", "json")
    assert dev.exit_code == 0, dev.output  # dev's render is fine
    refused = run("validate", fleet)
    assert refused.exit_code == 1
    assert "apps/storefront/staging-only.yaml:" in refused.stderr

    assert agent.step() == "invalid"
    status = read_status(Cluster(api.api_client()), ApplySetParent.for_cluster(CLUSTER))
    assert (status["lastAppliedCommit"], status["lastAttemptedCommit"]) == (good, bad)
    assert "apps/storefront/staging-only.yaml:" in status["lastError"]
    web = Cluster(api.api_client()).get("apps/v1", "Deployment", "storefront", "web")
    assert web is not None
    env = {
        e["name"]: e.get("value") for e in web["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env.get("LOG_FORMAT") == "json"  # the commit's dev change was not applied
