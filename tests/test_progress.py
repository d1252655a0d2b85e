"""Progress and CI-friendly output: plain lines when stderr is not a terminal (periodic,
per phase, per retry), nothing wrapped or cut, a live display on a terminal that leaves
``-o json`` on stdout intact, and ``--wait`` that says what it timed out on."""

from __future__ import annotations

import io
import json
import os
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from specc.cli import cli
from specc.progress import LineProgress, style
from specc.testing import ApiServer
from tests.helpers import edit

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("SPECC_TEST_KUBECONFIG")), reason="needs the double (faults)"
)

LONG = ("a-long-config-map-name-" * 6)[:120].rstrip("-") + "x"
MANIFESTS = "apps/platform/specc-agent-rbac.yaml"


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def _kube(api: ApiServer) -> list[str]:
    return ["--kubeconfig", str(api.kubeconfig_path), "--context", "specc-double"]


def _small(fleet: Path) -> None:
    # The monitoring stack waits on operator CRDs the double has no controller for.
    (fleet / "apps/storefront/monitoring.yaml").unlink(missing_ok=True)


def test_plain_lines_every_period_and_at_the_end_of_a_long_phase() -> None:
    out = io.StringIO()
    p = LineProgress("sync dev", stream=out, every=0.02, quiet=0.05)
    p.phase("apply wave 1/2", total=3)
    p.advance()
    time.sleep(0.15)
    p.advance(2)
    p.phase("quick")  # ends wave 1; itself too short to report
    p.note("PATCH /x: HTTP 503, retry 1 in 0.5 s")
    p.close()
    lines = out.getvalue().splitlines()
    assert any(line.startswith("sync dev: apply wave 1/2: 1/3, ") for line in lines), lines
    assert "sync dev: apply wave 1/2: 3/3, done in " in out.getvalue()
    assert "quick" not in out.getvalue()
    assert lines[-1] == "sync dev: PATCH /x: HTTP 503, retry 1 in 0.5 s"


def test_a_short_command_prints_no_progress() -> None:
    out = io.StringIO()
    p = LineProgress("render", stream=out)
    p.phase("load, validate, compile, check")
    p.close()
    assert out.getvalue() == ""


def test_style_follows_the_terminal_unless_told(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SPECC_PROGRESS", raising=False)
    assert style(io.StringIO()) == "plain"
    monkeypatch.setenv("SPECC_PROGRESS", "off")
    assert style(io.StringIO()) == "off"


def test_a_long_sync_in_ci_shows_waves_and_retries_and_no_cut_names(
    api: ApiServer, fleet: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _small(fleet)
    edit(
        fleet,
        MANIFESTS,
        "    metadata: {name: specc-agent}\n  - apiVersion: rbac",
        f"    metadata: {{name: specc-agent}}\n  - apiVersion: v1\n    kind: ConfigMap\n"
        f"    metadata: {{name: {LONG}}}\n    data: {{a: b}}\n  - apiVersion: rbac",
    )
    monkeypatch.setenv("SPECC_PROGRESS", "plain")
    monkeypatch.setenv("SPECC_PROGRESS_EVERY", "0.05")
    # Slow writes (a busy API server) and one refused write, retried. Each write outlasts
    # the 0.05 s quiet time, so every wave reports its end however fast the machine is.
    api.faults.add("*", "PATCH", latency=0.2)
    retried = api.faults.add("*", "PATCH", status=503, times=1)
    result = run("sync", str(fleet), "--cluster", "dev", *_kube(api))
    assert result.exit_code == 0, result.output
    assert retried.fired == 1
    err = result.stderr.splitlines()
    assert any(line.startswith("sync dev: apply wave 1/") for line in err), err
    assert any("done in" in line for line in err), err
    assert any(": HTTP 503, retry 1 in " in line for line in err), err
    # The result table: the 120-character name whole, on one line with its result.
    (row,) = [line for line in result.stdout.splitlines() if LONG in line]
    assert row.startswith(f"ConfigMap/platform/{LONG}") or f"/{LONG} " in row
    assert "created" in row
    assert all(len(line) < 1000 for line in result.stdout.splitlines())


def test_tty_progress_leaves_json_stdout_whole(
    api: ApiServer, fleet: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _small(fleet)
    monkeypatch.setenv("SPECC_PROGRESS", "tty")
    result = run("sync", str(fleet), "--cluster", "dev", *_kube(api), "-o", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["cluster"] == "dev"
    assert "\x1b[" in result.stderr  # the live display drew (on stderr)


def test_wait_names_what_timed_out_and_keeps_the_timeout(
    api: ApiServer, fleet: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _small(fleet)
    monkeypatch.setenv("SPECC_PROGRESS", "plain")
    # No controller in the double: Deployments never become available.
    started = time.monotonic()
    result = run("sync", str(fleet), "--cluster", "dev", *_kube(api), "--wait", "--timeout", "1")
    elapsed = time.monotonic() - started
    assert result.exit_code == 1
    assert "error: --wait timed out after " in result.stderr
    assert "(--timeout 1)" in result.stderr
    assert "Deployment/" in result.stderr.split("timed out", 1)[1]
    # The render and apply come before the wait; the wait itself stops at its deadline.
    waited = float(result.stderr.split("timed out after ", 1)[1].split(" s", 1)[0])
    # Within one request of the deadline (a loaded CI machine slows that request down).
    assert 1.0 <= waited < 2.5 and elapsed < 30
    as_json = run(
        "sync",
        str(fleet),
        "--cluster",
        "dev",
        *_kube(api),
        "--wait",
        "--timeout",
        "0.5",
        "-o",
        "json",
    )
    data = json.loads(as_json.stdout)
    assert data["wait"]["timedOut"] is True
    assert any(p.startswith("Deployment/") for p in data["wait"]["pending"])


def test_sync_once_applies_once_and_exits_with_the_syncs_code(api: ApiServer, fleet: Path) -> None:
    # The example workflow runs `specc sync --once`: one sync, its exit code.
    _small(fleet)
    first = run("sync", str(fleet), "--cluster", "dev", "--once", *_kube(api))
    assert first.exit_code == 0, first.output
    assert "created" in first.stdout
    assert run("plan", str(fleet), "--cluster", "dev", *_kube(api)).exit_code == 0  # in sync
    api.faults.add("/apis/apps/v1/*", "PATCH", status=422, times=1000)
    edit(fleet, "apps/storefront/web.yaml", "LOG_FORMAT: json", "LOG_FORMAT: text")
    failed = run("sync", str(fleet), "--cluster", "dev", "--once", *_kube(api))
    assert failed.exit_code == 1, failed.output


def test_the_terminal_display_prints_notes_and_survives_a_phase_after_close() -> None:
    from rich.console import Console

    from specc.progress import RichProgress

    out = io.StringIO()
    p = RichProgress("sync dev", console=Console(file=out, force_terminal=True, width=100))
    p.phase("apply wave 1/1", total=2)
    p.advance()
    p.note("PATCH /x: HTTP 503, retry 1 in 0.5 s")
    p.advance()
    p.close()
    p.phase("wait for health", total=1)  # the CLI waits after the sync's own phases
    p.update(1, "Deployment/web/web: 1/1 ready")
    p.close()
    text = out.getvalue()
    assert "PATCH /x: HTTP 503, retry 1 in 0.5 s" in text
    assert "wait for health" in text and "1/1" in text
