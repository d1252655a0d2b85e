"""Least privilege, on the real control plane with the RBAC authorizer on.

A ServiceAccount bound to the ClusterRole that ``specc rbac --cluster dev`` derives runs
``specc sync``, ``plan``, ``status`` and the agent (Lease, status writes, a prune). The
API server's audit log then shows every request it made: all allowed (no rule missing).
Then each rule in turn is removed, and the same requests (as SubjectAccessReviews) and a
server-side dry-run of every RBAC object the fleet renders (RBAC's escalate and bind
checks are not requests of their own) are asked again: each removal refuses at least one
of them (no rule unused). Last, the escalations the old role allowed are refused.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from specc.agent import Agent, AgentOptions
from specc.cli import cli
from specc.pipeline import render_path
from specc.source import GitSourceOptions
from specc.sync import Cluster, ClusterOptions, SyncOptions
from specc.sync.apply import read_status
from specc.sync.cluster import ApiError
from specc.sync.inventory import ApplySetParent
from specc.testing.pytest_plugin import KubeTarget
from tests.helpers import copy_fleet

CLUSTER = "dev"
NAMESPACE, ACCOUNT = "platform", "specc-agent"
USER = f"system:serviceaccount:{NAMESPACE}:{ACCOUNT}"
GROUPS = ["system:serviceaccounts", f"system:serviceaccounts:{NAMESPACE}", "system:authenticated"]
RBAC_FILE = "apps/platform/specc-agent-rbac.yaml"


def git(cwd: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@x",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@x",
    }
    done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def derived_role(fleet: Path) -> dict[str, Any]:
    """Return what ``specc rbac FLEET --cluster dev`` prints."""
    result = CliRunner().invoke(cli, ["rbac", str(fleet), "--cluster", CLUSTER])
    assert result.exit_code == 0, result.output
    role: dict[str, Any] = yaml.safe_load(result.output)
    return role


def commit_role(fleet: Path, role: dict[str, Any]) -> None:
    """Write ``role`` as the fleet's agent ClusterRole (what an operator does after `specc rbac`)."""
    path = fleet / RBAC_FILE
    text = path.read_text()
    modeline = text.splitlines()[0]
    document = yaml.safe_load(text)
    objects = document["spec"]["objects"]
    (index,) = [i for i, o in enumerate(objects) if o["kind"] == "ClusterRole"]
    objects[index] = copy.deepcopy(role)
    path.write_text(modeline + "\n" + yaml.safe_dump(document, sort_keys=False))


@dataclass
class Agent_:
    kubeconfig: Path
    role: dict[str, Any]
    admin: Cluster

    def cluster(self) -> Cluster:
        return Cluster.connect(ClusterOptions(kubeconfig=str(self.kubeconfig)))

    def set_rules(self, rules: list[dict[str, Any]], marker: str) -> None:
        """Give the agent's ClusterRole ``rules`` (plus a marker) and wait until RBAC sees it."""
        body = copy.deepcopy(self.role)
        body["rules"] = [
            *rules,
            {
                "apiGroups": [""],
                "resources": ["configmaps"],
                "resourceNames": [marker],
                "verbs": ["get"],
            },
        ]
        self.admin.apply(body, force=True, manager="admin")
        probe = {
            "verb": "get",
            "group": "",
            "resource": "configmaps",
            "name": marker,
            "namespace": "x",
        }
        deadline = time.monotonic() + 30
        while not self.allowed(probe):
            assert time.monotonic() < deadline, "RBAC never saw the changed role"
            time.sleep(0.05)

    def allowed(self, attributes: dict[str, Any]) -> bool:
        spec: dict[str, Any] = {"user": USER, "groups": GROUPS}
        if "path" in attributes:
            spec["nonResourceAttributes"] = attributes
        else:
            spec["resourceAttributes"] = {k: v for k, v in attributes.items() if v}
        review = self.admin.request(
            "create",
            "POST",
            "/apis/authorization.k8s.io/v1/subjectaccessreviews",
            body={
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SubjectAccessReview",
                "spec": spec,
            },
        )
        return bool(review["status"].get("allowed"))


def _apply_as(cluster: Cluster, body: dict[str, Any]) -> int:
    try:
        cluster.apply(body, force=True, dry_run=True)
    except ApiError as exc:
        return exc.status
    return 200


@pytest.fixture
def agent_access(real_kube: KubeTarget, tmp_path: Path) -> Iterator[tuple[Agent_, Path]]:
    """The example fleet (without monitoring), its derived role bound to the agent's SA."""
    assert real_kube.real is not None
    if real_kube.real.plane is None:
        pytest.skip("reads the audit log of a control plane this test run started")
    fleet = copy_fleet(tmp_path)
    # dev's own role: the MonitoringStack (placed on staging and prod) needs no grant here.
    role = derived_role(fleet)
    assert not any("monitoring.coreos.com" in r["apiGroups"] for r in role["rules"])
    commit_role(fleet, role)
    assert derived_role(fleet) == role  # the role does not depend on its own committed copy
    admin = Cluster.connect(ClusterOptions(kubeconfig=str(real_kube.kubeconfig_path)))
    # What an admin applies once (`specc rbac --cluster dev | kubectl apply`): the agent's
    # namespace, ServiceAccount, role and binding; from then on the agent applies them.
    for body in (
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": ACCOUNT, "namespace": NAMESPACE},
        },
        role,
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "specc-agent"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "specc-agent",
            },
            "subjects": [{"kind": "ServiceAccount", "name": ACCOUNT, "namespace": NAMESPACE}],
        },
    ):
        admin.apply(body, force=True, manager="admin")
    kubeconfig = real_kube.real.service_account_kubeconfig(
        NAMESPACE, ACCOUNT, tmp_path / "agent.kubeconfig"
    )
    yield Agent_(kubeconfig, role, admin), fleet


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def _attributes(event: dict[str, Any]) -> dict[str, Any]:
    ref = event.get("objectRef")
    if not ref:
        return {"path": event["requestURI"].split("?")[0], "verb": event["verb"]}
    return {
        "verb": event["verb"],
        "group": ref.get("apiGroup", ""),
        "resource": ref.get("resource", ""),
        "subresource": ref.get("subresource", ""),
        "namespace": ref.get("namespace", ""),
        "name": ref.get("name", ""),
    }


def _run_agent(fleet: Path, kubeconfig: Path, tmp_path: Path) -> None:
    """Run the agent (Lease on) until it applied the head, then until it pruned a removed app."""
    work = tmp_path / "repo"
    work.mkdir()
    git(work, "init", "--quiet", "-b", "main")
    shutil.copytree(fleet, work / "fleet")
    git(work, "add", "-A")
    git(work, "commit", "--quiet", "-m", "fleet")
    first = git(work, "rev-parse", "HEAD")
    cluster = Cluster.connect(ClusterOptions(kubeconfig=str(kubeconfig)))
    agent = Agent(
        AgentOptions(
            source=GitSourceOptions(url=str(work), workdir=tmp_path / "mirror"),
            cluster=CLUSTER,
            interval=0.2,
            resync=3600,
            listen=("127.0.0.1", 0),
            lease_duration=3.0,
            sync=SyncOptions(concurrency=4),
        ),
        cluster,
    )
    runner = threading.Thread(target=agent.run, daemon=True)
    runner.start()
    parent = ApplySetParent.for_cluster(CLUSTER)
    try:
        for expected in (first, None):
            if expected is None:
                # The next commit drops an app: the agent prunes its objects.
                shutil.rmtree(work / "fleet/apps/storefront")
                (work / "fleet/apps/storefront").mkdir()
                shutil.copy(fleet / "apps/storefront/catalog.yaml", work / "fleet/apps/storefront")
                git(work, "add", "-A")
                git(work, "commit", "--quiet", "-m", "drop web")
                expected = git(work, "rev-parse", "HEAD")
            deadline = time.monotonic() + 120
            while read_status(cluster, parent).get("lastAppliedCommit") != expected:
                assert runner.is_alive() and time.monotonic() < deadline, read_status(
                    cluster, parent
                )
                time.sleep(0.2)
    finally:
        agent.stop.set()
        runner.join(30)


def test_the_derived_role_allows_every_request_and_each_rule_is_needed(
    real_kube: KubeTarget, agent_access: tuple[Agent_, Path], tmp_path: Path
) -> None:
    access, fleet = agent_access
    assert real_kube.real is not None and real_kube.real.plane is not None
    target = [
        "--cluster",
        CLUSTER,
        "--kubeconfig",
        str(access.kubeconfig),
        "--context",
        "specc-kube",
    ]
    code, output = _cli("sync", str(fleet), *target)
    assert code == 0, output
    code, output = _cli("plan", str(fleet), *target)
    assert code == 0, output
    code, output = _cli("status", *target)
    assert code == 0, output
    _run_agent(fleet, access.kubeconfig, tmp_path)
    assert access.cluster().get("apps/v1", "Deployment", "storefront", "web") is None  # pruned

    events = real_kube.real.plane.audit_events(USER)
    assert events, "no audit events for the agent's ServiceAccount"
    refused = [
        e for e in events if e["annotations"].get("authorization.k8s.io/decision") != "allow"
    ]
    assert not refused, [(e["verb"], e["requestURI"]) for e in refused]
    requests = {json.dumps(_attributes(e), sort_keys=True) for e in events}
    attributes = [json.loads(r) for r in sorted(requests)]
    _, (render,) = render_path(fleet, [CLUSTER])
    # Not the agent's own role: re-applying it needs every rule it has, used or not.
    rbac_objects = [
        o.body
        for o in render.objects
        if o.key.group == "rbac.authorization.k8s.io" and str(o.key) != "ClusterRole/specc-agent"
    ]

    rules = access.role["rules"]
    unused = []
    try:
        for index, rule in enumerate(rules):
            access.set_rules(rules[:index] + rules[index + 1 :], f"marker-{index}")
            denied = [a for a in attributes if not access.allowed(a)]
            if not denied:
                agent = access.cluster()
                denied = [o for o in rbac_objects if _apply_as(agent, o) == 403]
            if not denied:
                unused.append(rule)
    finally:
        access.set_rules(rules, "marker-restored")
    assert not unused, f"rules nothing needs: {unused}"


def test_the_agent_cannot_grant_itself_more(agent_access: tuple[Agent_, Path]) -> None:
    access, _ = agent_access
    agent = access.cluster()
    everything = [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]
    own = {**copy.deepcopy(access.role), "rules": everything}
    assert _apply_as(agent, own) == 403
    new_role = {**copy.deepcopy(own), "metadata": {"name": "specc-evil"}}
    assert _apply_as(agent, new_role) == 403
    to_admin = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "admin-platform", "namespace": NAMESPACE},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": "cluster-admin",
        },
        "subjects": [{"kind": "ServiceAccount", "name": ACCOUNT, "namespace": NAMESPACE}],
    }
    assert _apply_as(agent, to_admin) == 403
    cluster_admin = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": "specc-agent-admin"},
        "roleRef": to_admin["roleRef"],
        "subjects": to_admin["subjects"],
    }
    assert _apply_as(agent, cluster_admin) == 403
    # What the fleet does declare still goes through.
    assert _apply_as(agent, access.role) == 200
