"""``specc.dev/source`` names the spec file and the app, so an edit elsewhere in a file
changes no object; ``explain`` finds the line when asked."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from specc.cli import cli
from specc.pipeline import render_path
from specc.sync import Cluster, ClusterOptions, sync
from specc.testing import ApiServer
from tests.helpers import edit, line_of

WEB = "apps/storefront/web.yaml"


@pytest.fixture
def fleet(fleet: Path) -> Path:
    # The double serves no prometheus-operator CRDs unless the fleet installs them.
    (fleet / "apps/storefront/monitoring.yaml").unlink(missing_ok=True)
    return fleet


def connect(server: ApiServer) -> Cluster:
    return Cluster(
        server.api_client(), ClusterOptions(backoff=0.001, max_backoff=0.01), sleep=lambda _: None
    )


def add_comments(fleet: Path) -> None:
    """Comments and blank lines above every spec and team: every line number moves."""
    for path in [*fleet.glob("apps/**/*.yaml"), *fleet.glob("teams/*.yaml")]:
        text = path.read_text(encoding="utf-8")
        path.write_text(
            text.replace("\nkind: ", "\n# Reviewed in the spring.\n\nkind: "), encoding="utf-8"
        )


def test_a_comment_only_edit_changes_no_rendered_object(fleet: Path) -> None:
    _, before = render_path(fleet)
    add_comments(fleet)
    _, after = render_path(fleet)
    assert [[o.body for o in r.objects] for r in before] == [
        [o.body for o in r.objects] for r in after
    ]
    assert before[0].objects[0].source != after[0].objects[0].source  # the lines did move


@pytest.mark.skipif(
    bool(os.environ.get("SPECC_TEST_KUBECONFIG")), reason="counts the double's writes"
)
def test_a_comment_only_edit_makes_the_next_sync_write_nothing(api: ApiServer, fleet: Path) -> None:
    _, (render,) = render_path(fleet, ["dev"])
    assert sync(connect(api), render).ok
    add_comments(fleet)
    _, (moved,) = render_path(fleet, ["dev"])
    api.log.clear()
    again = sync(connect(api), moved)
    assert again.ok and again.counts()["unchanged"] == len(moved.objects)
    assert api.log.persisted_writes() == 0


def test_explain_resolves_the_line_when_asked(fleet: Path) -> None:
    runner = CliRunner()
    args = ["explain", "Deployment/storefront/web", str(fleet), "--cluster", "dev", "-o", "json"]
    first = json.loads(runner.invoke(cli, args).stdout)
    edit(
        fleet,
        WEB,
        "apiVersion: specc.dev/v1alpha1\n",
        "# moved down\n\n\napiVersion: specc.dev/v1alpha1\n",
    )
    second = json.loads(runner.invoke(cli, args).stdout)
    assert first[0]["annotation"] == second[0]["annotation"] == f"{WEB}#Service/storefront/web"
    assert first[0]["source"] == f"{WEB}:2"
    assert second[0]["source"] == f"{WEB}:{line_of(fleet, WEB, 'apiVersion:')}" == f"{WEB}:5"
