"""The connection rule: every cluster command talks to the cluster the fleet names, and says so.

Pure tests of the rule first, then the CLI against two API server doubles behind one
multi-context kubeconfig (tests/clusters.py): the set-up in which specc once planned
dev against the current context and synced staging's objects into dev.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from specc.errors import UsageError
from specc.sync import connection
from specc.sync.connection import ConnectionRequest, resolve
from specc.sync.inventory import PART_OF, ApplySetParent
from tests.clusters import Clusters, kubeconfig, run, target_line, two_clusters


@pytest.fixture
def clusters(tmp_path: Path) -> Iterator[Clusters]:
    yield from two_clusters(tmp_path)


@pytest.fixture
def fleet(fleet: Path) -> Path:
    # The doubles serve no prometheus-operator CRDs (plan's discovery check is tested apart).
    (fleet / "apps/storefront/monitoring.yaml").unlink()
    return fleet


# -- the rule, pure -------------------------------------------------------------------------


def request(**kw: object) -> ConnectionRequest:
    return ConnectionRequest(cluster="dev", **kw)  # type: ignore[arg-type]


def test_the_fleets_context_applies_to_an_explicit_kubeconfig(clusters: Clusters) -> None:
    clusters.use_current("staging")
    target = resolve(request(kubeconfig=str(clusters.multi), fleet_context="kind-dev"), {})
    assert (target.kubeconfig, target.context) == (str(clusters.multi), "kind-dev")
    assert target.context_from == "fleet.yaml connection.context"


def test_kubeconfig_comes_from_the_flag_then_kubeconfig_then_home(
    clusters: Clusters, tmp_path: Path
) -> None:
    env = {"KUBECONFIG": str(clusters.multi), "HOME": str(tmp_path)}
    assert resolve(request(fleet_context="staging"), env).kubeconfig == str(clusters.multi)
    flag = resolve(request(kubeconfig=str(clusters.dev_only)), env)
    assert (flag.kubeconfig, flag.context) == (str(clusters.dev_only), "kind-dev")
    home = tmp_path / ".kube" / "config"
    home.parent.mkdir()
    home.write_text(clusters.dev_only.read_text())
    fallback = resolve(request(), {"HOME": str(tmp_path)})
    assert (fallback.kubeconfig, fallback.context) == (str(home), "kind-dev")
    assert fallback.context_from == "the file's only context"


def test_context_flag_wins_over_the_fleet(clusters: Clusters) -> None:
    target = resolve(
        request(kubeconfig=str(clusters.multi), context="staging", fleet_context="kind-dev"), {}
    )
    assert (target.context, target.context_from) == ("staging", "--context")


def test_several_contexts_and_none_named_is_refused_naming_the_file(clusters: Clusters) -> None:
    with pytest.raises(UsageError) as err:
        resolve(request(kubeconfig=str(clusters.multi)), {})
    message = str(err.value)
    assert message.startswith(f"{clusters.multi}: 3 contexts (kind-dev, kind-other, staging)")
    assert "--context" in message and "current-context is not followed" in message
    assert err.value.exit_code == 2


def test_a_context_the_file_lacks_is_refused_naming_who_asked(clusters: Clusters) -> None:
    with pytest.raises(UsageError, match=r"no context 'kind-prod' \(named by fleet.yaml"):
        resolve(request(kubeconfig=str(clusters.multi), fleet_context="kind-prod"), {})
    with pytest.raises(UsageError, match="no such kubeconfig file"):
        resolve(request(kubeconfig="/nonexistent/kubeconfig"), {})


def test_in_cluster_config_only_in_a_pod_and_only_when_nothing_is_named(
    clusters: Clusters, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = tmp_path / "token"
    token.write_text("t")
    monkeypatch.setattr(connection, "SERVICE_ACCOUNT_TOKEN", token)
    pod = {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "HOME": str(tmp_path)}
    assert resolve(request(fleet_in_cluster=True), pod).in_cluster
    # The operator's explicit choices still win inside a pod.
    named = request(fleet_in_cluster=True, kubeconfig=str(clusters.dev_only))
    assert not resolve(named, pod).in_cluster
    env = resolve(request(fleet_in_cluster=True), {**pod, "KUBECONFIG": str(clusters.dev_only)})
    assert not env.in_cluster and env.kubeconfig == str(clusters.dev_only)
    # Outside a pod an inCluster fleet cluster is reached by the kubeconfig rule.
    with pytest.raises(UsageError, match="no such kubeconfig file"):
        resolve(request(fleet_in_cluster=True), {"HOME": str(tmp_path)})


def test_a_kubeconfig_the_fleet_names_is_not_used_without_the_operators_flag(
    clusters: Clusters, tmp_path: Path
) -> None:
    committed = str(clusters.dev_only)
    home = {"HOME": str(tmp_path), "KUBECONFIG": str(clusters.multi)}
    ignored = resolve(request(fleet_kubeconfig=committed, fleet_context="staging"), home)
    assert ignored.kubeconfig == str(clusters.multi)
    assert "not used without --use-fleet-kubeconfig" in ignored.notes[0]
    used = resolve(request(fleet_kubeconfig=committed, use_fleet_kubeconfig=True), home)
    assert used.kubeconfig == committed and not used.notes


def test_an_exec_plugin_in_a_committed_kubeconfig_never_runs(
    clusters: Clusters, fleet: Path, tmp_path: Path
) -> None:
    # fleet.yaml names a kubeconfig whose user runs a program and points at a server of
    # the commit's choosing (the staging double standing in for an attacker's).
    proof = tmp_path / "ran"
    evil = fleet / "evil-kubeconfig.yaml"
    evil.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "x", "cluster": {"server": clusters.staging.url}}],
                "users": [
                    {
                        "name": "x",
                        "user": {
                            "exec": {
                                "apiVersion": "client.authentication.k8s.io/v1",
                                "command": "sh",
                                "args": ["-c", f"touch {proof}; echo '{{}}'"],
                                "interactiveMode": "Never",
                            }
                        },
                    }
                ],
                "contexts": [{"name": "kind-dev", "context": {"cluster": "x", "user": "x"}}],
                "current-context": "kind-dev",
            }
        )
    )
    fleet_yaml = fleet / "fleet.yaml"
    fleet_yaml.write_text(
        fleet_yaml.read_text().replace(
            "connection: {context: kind-dev}",
            "connection: {context: kind-dev, kubeconfig: evil-kubeconfig.yaml}",
        )
    )
    result = run("plan", str(fleet), "--cluster", "dev", env={"KUBECONFIG": str(clusters.multi)})
    assert result.exit_code == 1, result.output
    assert target_line(result) == f"cluster dev: context kind-dev, server {clusters.dev.url}"
    assert "not used without --use-fleet-kubeconfig" in result.stderr
    assert not proof.exists() and clusters.staging.log.count() == 0


# -- the CLI over two clusters ---------------------------------------------------------------


def test_plan_with_a_multi_context_kubeconfig_uses_the_fleets_context_not_the_current_one(
    clusters: Clusters, fleet: Path
) -> None:
    # Seen: `specc plan fleet --cluster dev --kubeconfig multi.yaml` used the current
    # context; `KUBECONFIG=multi.yaml specc plan ...` used kind-dev. Same file, two clusters.
    clusters.use_current("staging")
    by_flag = run("plan", str(fleet), "--cluster", "dev", "--kubeconfig", str(clusters.multi))
    by_env = run("plan", str(fleet), "--cluster", "dev", env={"KUBECONFIG": str(clusters.multi)})
    expected = f"cluster dev: context kind-dev, server {clusters.dev.url}"
    for result in (by_flag, by_env):
        assert result.exit_code == 1, result.output
        assert target_line(result) == expected
    assert by_flag.stdout == by_env.stdout
    assert clusters.staging.log.count() == 0 and clusters.dev.log.count() > 0


def test_status_follows_the_fleets_connection(clusters: Clusters, fleet: Path) -> None:
    # Seen: `specc status --cluster dev` ignored the fleet's connection entirely.
    synced = run("sync", str(fleet), "--cluster", "dev", "--kubeconfig", str(clusters.multi))
    assert synced.exit_code == 0, synced.output
    clusters.use_current("staging")
    clusters.clear_logs()
    status = run("status", str(fleet), "--cluster", "dev", "--kubeconfig", str(clusters.multi))
    assert status.exit_code == 0, status.output
    assert target_line(status) == f"cluster dev: context kind-dev, server {clusters.dev.url}"
    assert "lastResult: applied" in status.stdout
    assert clusters.staging.log.count() == 0
    as_json = run(
        "status", str(fleet), "--cluster", "dev", "--kubeconfig", str(clusters.multi), "-o", "json"
    )
    data = json.loads(as_json.stdout)
    assert data["lastResult"] == "applied" and data["connection"]["context"] == "kind-dev"


def test_sync_of_staging_goes_to_staging_whatever_the_current_context(
    clusters: Clusters, fleet: Path
) -> None:
    # Seen: with current-context = dev, `sync --cluster staging --kubeconfig multi.yaml`
    # applied staging's objects into dev and relabelled dev's members.
    assert (
        run("sync", str(fleet), "--cluster", "dev", "--kubeconfig", str(clusters.multi)).exit_code
        == 0
    )
    dev_parent = ApplySetParent.for_cluster("dev")
    before = clusters.dev.dynamic_client().resources.get(api_version="apps/v1", kind="Deployment")
    clusters.use_current("kind-dev")
    clusters.clear_logs()
    result = run("sync", str(fleet), "--cluster", "staging", "--kubeconfig", str(clusters.multi))
    assert result.exit_code == 0, result.output
    assert target_line(result) == f"cluster staging: context staging, server {clusters.staging.url}"
    assert clusters.dev.log.count() == 0
    assert clusters.staging.log.persisted_writes() > 0
    labels = {
        d.metadata.name: d.metadata.labels[PART_OF]
        for d in before.get(namespace="storefront").items
    }
    assert labels and set(labels.values()) == {dev_parent.id}


@pytest.mark.parametrize("context", ["kind-dev", "kind-other"])
def test_staging_onto_dev_is_refused_with_zero_writes(
    clusters: Clusters, fleet: Path, context: str
) -> None:
    assert (
        run("sync", str(fleet), "--cluster", "dev", "--kubeconfig", str(clusters.multi)).exit_code
        == 0
    )
    clusters.clear_logs()
    for command in (["sync"], ["plan"], ["sync", "--dry-run"], ["diff"]):
        result = run(
            *command, str(fleet), "--cluster", "staging", "--kubeconfig", str(clusters.multi),
            "--context", context,
        )  # fmt: skip
        assert result.exit_code == 2, (command, result.output)
        assert (
            target_line(result) == f"cluster staging: context {context}, server {clusters.dev.url}"
        )
        assert (
            "cluster staging of fleet acme: the server "
            f"{clusters.dev.url} holds cluster dev of fleet acme "
            "(ConfigMap specc-system/specc-dev); refusing to write"
        ) in result.stderr, result.stderr
    assert clusters.dev.log.writes() == 0  # dry-runs included
    assert clusters.staging.log.count() == 0


def test_prod_eu_with_a_dev_kubeconfig_is_refused_by_the_identity_guard(
    clusters: Clusters, fleet: Path
) -> None:
    # Seen: `specc plan fleet --cluster prod-eu --kubeconfig dev.yaml` planned prod-eu against dev.
    assert (
        run(
            "sync", str(fleet), "--cluster", "dev", "--kubeconfig", str(clusters.dev_only)
        ).exit_code
        == 0
    )
    clusters.clear_logs()
    result = run("plan", str(fleet), "--cluster", "prod-eu", "--kubeconfig", str(clusters.dev_only))
    assert result.exit_code == 2, result.output
    assert target_line(result) == f"cluster prod-eu: context kind-dev, server {clusters.dev.url}"
    assert "holds cluster dev of fleet acme" in result.stderr
    assert clusters.dev.log.writes() == 0
    # prod-eu names no context: a file with several contexts is refused before any request.
    clusters.clear_logs()
    several = run("plan", str(fleet), "--cluster", "prod-eu", "--kubeconfig", str(clusters.multi))
    assert (
        several.exit_code == 2 and "names none in fleet.yaml connection.context" in several.stderr
    )
    assert clusters.dev.log.count() == clusters.staging.log.count() == 0


def test_allow_cluster_mismatch_writes_and_says_so_loudly(clusters: Clusters, fleet: Path) -> None:
    # Same volumes in dev and staging: a StatefulSet's volumeClaimTemplates cannot change
    # in place (the API server refuses it, and so does the double).
    ledger = fleet / "apps/payments/ledger-db.yaml"
    ledger.write_text(ledger.read_text().replace("      storage: {size: 5Gi}\n", "", 1))
    assert (
        run("sync", str(fleet), "--cluster", "dev", "--kubeconfig", str(clusters.multi)).exit_code
        == 0
    )
    result = run(
        "sync", str(fleet), "--cluster", "staging", "--kubeconfig", str(clusters.multi),
        "--context", "kind-dev", "--allow-cluster-mismatch", "--adopt", "-o", "json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "warning cluster staging of fleet acme: the server" in result.stderr
    assert "writing anyway (--allow-cluster-mismatch)" in result.stderr
    data = json.loads(result.stdout)
    assert any("--allow-cluster-mismatch" in w for w in data["warnings"])


def test_every_cluster_command_prints_its_target_first_and_json_carries_it(
    clusters: Clusters, fleet: Path
) -> None:
    kube = ["--cluster", "dev", "--kubeconfig", str(clusters.multi)]
    expected = f"cluster dev: context kind-dev, server {clusters.dev.url}"
    for command in (["plan"], ["sync", "--dry-run"], ["sync"], ["diff"], ["status"]):
        text = run(*command, str(fleet), *kube)
        assert target_line(text) == expected, (command, text.stderr)
        as_json = run(*command, str(fleet), *kube, "-o", "json")
        assert json.loads(as_json.stdout)["connection"] == {
            "cluster": "dev",
            "server": clusters.dev.url,
            "context": "kind-dev",
            "kubeconfig": str(clusters.multi),
            "contextFrom": "fleet.yaml connection.context",
        }, command


def test_the_agent_takes_its_connection_from_its_flags_only(
    clusters: Clusters, tmp_path: Path
) -> None:
    several = run(
        "agent", "--repo", str(tmp_path), "--cluster", "dev", "--kubeconfig", str(clusters.multi),
        "--listen", "127.0.0.1:0", "--workdir", str(tmp_path / "w"),
    )  # fmt: skip
    assert several.exit_code == 2
    assert "3 contexts" in several.stderr and "--context" in several.stderr


def test_a_kubeconfig_with_one_context_and_no_fleet_context(
    clusters: Clusters, fleet: Path
) -> None:
    single = kubeconfig(fleet.parent / "one.yaml", {"whatever": clusters.staging}, "whatever")
    result = run("plan", str(fleet), "--cluster", "prod-eu", "--kubeconfig", str(single))
    assert (
        target_line(result) == f"cluster prod-eu: context whatever, server {clusters.staging.url}"
    )
