"""One field-path spelling in plan, diff and sync, whatever form the path came in."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from specc.diff import DiffOptions, diff_cluster
from specc.fieldpath import spell, spell_server, spell_tokens
from specc.pipeline import render_path
from specc.sync import Cluster, ClusterOptions, SyncOptions, plan_cluster, sync
from specc.sync.inventory import ApplySetParent, with_membership
from specc.sync.liveview import live_objects
from specc.testing import ApiServer

BODY = {
    "metadata": {"labels": {"app.kubernetes.io/name": "web", "tier": "a"}},
    "data": {"nginx.conf": "x"},
    "spec": {
        "template": {"spec": {"containers": [{"name": "web", "image": "a"}, {"name": "b"}]}},
        "ports": [{"port": 80}, {"port": 81}],
        "args": ["a", "b"],
    },
}

# (body walk, managedFields tokens, API server path) → the one spelling
CASES = [
    (
        ("spec", "template", "spec", "containers", 0, "image"),
        ("f:spec", "f:template", "f:spec", "f:containers", 'k:{"name":"web"}', "f:image"),
        '.spec.template.spec.containers[name="web"].image',
        "spec.template.spec.containers[name=web].image",
    ),
    (
        ("metadata", "labels", "app.kubernetes.io/name"),
        ("f:metadata", "f:labels", "f:app.kubernetes.io/name"),
        ".metadata.labels.app.kubernetes.io/name",
        'metadata.labels["app.kubernetes.io/name"]',
    ),
    (
        ("metadata", "labels", "tier"),
        ("f:metadata", "f:labels", "f:tier"),
        ".metadata.labels.tier",
        "metadata.labels.tier",
    ),
    (("data", "nginx.conf"), ("f:data", "f:nginx.conf"), ".data.nginx.conf", 'data["nginx.conf"]'),
    (("spec", "ports", 1), ("f:spec", "f:ports", "i:1"), ".spec.ports[1]", "spec.ports[1]"),
]


@pytest.mark.parametrize(("walk", "tokens", "server", "spelled"), CASES)
def test_every_form_of_a_path_is_spelled_one_way(
    walk: tuple[str | int, ...], tokens: tuple[str, ...], server: str, spelled: str
) -> None:
    assert spell(BODY, walk) == spelled
    assert spell_tokens(tokens) == spelled
    assert spell_server(server, BODY) == spelled


def test_an_item_to_be_added_is_named_by_its_own_name() -> None:
    containers = ("spec", "template", "spec", "containers", 2)
    assert spell(BODY, containers, {"name": "sidecar"}) == (
        "spec.template.spec.containers[name=sidecar]"
    )


def test_selectors_other_than_name_keep_their_keys() -> None:
    path = '.spec.ports[containerPort=80,protocol="TCP"].name'
    assert spell_server(path) == "spec.ports[containerPort=80,protocol=TCP].name"
    assert spell_tokens(("f:metadata", "f:finalizers", 'v:"a"')) == "metadata.finalizers[=a]"


@pytest.fixture
def fleet(fleet: Path) -> Path:
    (fleet / "apps/storefront/monitoring.yaml").unlink(missing_ok=True)
    return fleet


@pytest.mark.skipif(bool(os.environ.get("SPECC_TEST_KUBECONFIG")), reason="needs the double")
def test_plan_diff_and_sync_name_a_drifted_field_the_same_way(api: ApiServer, fleet: Path) -> None:
    _, (render,) = render_path(fleet, ["dev"])
    cluster = Cluster(
        api.api_client(), ClusterOptions(backoff=0.001, max_backoff=0.01), sleep=lambda _: None
    )
    assert sync(cluster, render).ok
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "evil:1"}]}}}}
    status, body, _ = cluster._send(
        "PATCH",
        "/apis/apps/v1/namespaces/storefront/deployments/web",
        [("fieldManager", "kubectl-patch")],
        {"Content-Type": "application/strategic-merge-patch+json", "Accept": "application/json"},
        patch,
    )
    assert status == 200, body
    expected = "spec.template.spec.containers[name=web].image"

    planned, _, _ = plan_cluster(cluster, render)
    (entry,) = planned.drifted
    assert [c.path for c in entry.changes] == [expected]

    desired = with_membership(render.objects, ApplySetParent.for_cluster("dev"))
    diffed = diff_cluster("dev", live_objects(planned), desired, DiffOptions())
    (changed,) = diffed.changed
    assert [f.path for f in changed.fields] == [expected]

    refused = sync(cluster, render, SyncOptions(force=False))
    (failed,) = [r for r in refused.results if r.outcome == "failed"]
    assert [f for f, _ in failed.taken] == [expected]
