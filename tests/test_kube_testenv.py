"""The real control plane tool: how it builds, caches, starts and (above all) stops.

The pure parts (go.mod of the build module, version flags, cache layout) are tables; the
process parts need the cached binaries and are marked ``real``: a control plane whose
owner is killed with SIGKILL leaves no etcd or kube-apiserver behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from specc.testing import kube
from specc.testing.kube import binaries as kbuild
from specc.testing.kube.controlplane import runs_root
from specc.testing.pytest_plugin import RealCluster

KUBERNETES_GO_MOD = """\
module k8s.io/kubernetes

go 1.26.0

require (
\tgithub.com/blang/semver/v4 v4.0.0
\tk8s.io/api v0.0.0
\tk8s.io/apiserver v0.0.0
\tk8s.io/sample-apiserver v0.0.0
\tk8s.io/klog/v2 v2.140.0
)

replace (
\tk8s.io/api => ./staging/src/k8s.io/api
\tk8s.io/apiserver => ./staging/src/k8s.io/apiserver
\tk8s.io/sample-apiserver => ./staging/src/k8s.io/sample-apiserver
\tk8s.io/sample-cli-plugin => ./staging/src/k8s.io/sample-cli-plugin
)
"""


def test_staging_modules_are_those_kubernetes_requires_and_replaces_with_a_directory() -> None:
    # sample-cli-plugin is replaced but not required: not every release publishes it.
    assert kbuild.staging_modules(KUBERNETES_GO_MOD) == [
        "k8s.io/api",
        "k8s.io/apiserver",
        "k8s.io/sample-apiserver",
    ]


def test_the_build_module_pins_each_staging_module_to_the_release() -> None:
    text = kbuild.kubernetes_go_mod_text(["k8s.io/api", "k8s.io/apiserver"], "v1.36.3", "1.26.0")
    assert "require k8s.io/kubernetes v1.36.3" in text
    assert "\tk8s.io/api => k8s.io/api v0.36.3\n" in text
    assert "\tk8s.io/apiserver => k8s.io/apiserver v0.36.3\n" in text
    assert "go 1.26.0" in text


def test_ldflags_make_the_binaries_report_the_release() -> None:
    flags = kbuild.ldflags("v1.36.3")
    for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        assert f"-X {package}.gitVersion=v1.36.3" in flags
        assert f"-X {package}.gitMajor=1" in flags
        assert f"-X {package}.gitMinor=36" in flags


def test_a_version_that_is_not_a_release_is_refused() -> None:
    with pytest.raises(kube.BuildUnavailable, match="expected a Kubernetes release"):
        kbuild.staging_version("master")


def test_the_cache_follows_xdg_cache_home_and_needs_a_complete_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    directory = kbuild.version_dir("v1.36.3")
    assert directory == tmp_path / "specc" / "kube" / "v1.36.3"
    assert kube.cached("v1.36.3") is None
    bin_dir = directory / "bin"
    bin_dir.mkdir(parents=True)
    for name in kbuild.BINARIES:
        (bin_dir / name).write_text("#!/bin/sh\n")
        (bin_dir / name).chmod(0o755)
    assert kube.cached("v1.36.3") is None  # no build.json: an interrupted build
    stamp = {"kubernetes": "v1.36.3", "etcd": "v3.6.6", "go": "1.26.8", "seconds": 1.0}
    (directory / "build.json").write_text(json.dumps(stamp))
    found = kube.cached("v1.36.3")
    assert found is not None and found.binary("etcd") == bin_dir / "etcd"
    (bin_dir / "etcd").unlink()
    assert kube.cached("v1.36.3") is None


def test_without_go_the_build_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(kube.BuildUnavailable, match="Go is not installed"):
        kube.build()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it is gone for our purpose.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def _wait_gone(pids: list[int], seconds: float = 20) -> list[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        left = [p for p in pids if _alive(p)]
        if not left:
            return []
        time.sleep(0.1)
    return [p for p in pids if _alive(p)]


@pytest.mark.slow
def test_a_killed_owner_leaves_no_control_plane_processes(real_cluster: RealCluster) -> None:
    """``kill -9`` of a test run: etcd, the API server and the controllers die with it."""
    script = textwrap.dedent(
        """
        import json, sys, time
        from specc.testing import kube
        plane = kube.ControlPlane(kube.cached()).start()
        print(json.dumps({"pids": [p.popen.pid for p in plane._processes],
                          "workdir": str(plane.workdir)}), flush=True)
        time.sleep(600)
        """
    )
    owner = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=os.getcwd()
    )
    assert owner.stdout is not None
    started = json.loads(owner.stdout.readline())
    assert len(started["pids"]) == 3 and all(_alive(p) for p in started["pids"])
    owner.send_signal(signal.SIGKILL)
    owner.wait()
    assert _wait_gone(started["pids"]) == []
    # The next start sweeps the dead run's directory.
    kube.controlplane.remove_stale_runs()
    assert not Path(started["workdir"]).exists()


@pytest.mark.slow
def test_start_returns_when_ready_and_stop_ends_every_process(
    real_cluster: RealCluster, tmp_path: Path
) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    command = [sys.executable, "-m", "specc.testing.kube"]
    started = subprocess.run(
        [*command, "start", "--kubeconfig", str(kubeconfig)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert started.returncode == 0, started.stderr
    assert "ready https://127.0.0.1:" in started.stderr
    state = next(
        json.loads(f.read_text())
        for f in runs_root().glob("*/state.json")
        if json.loads(f.read_text()).get("kubeconfig") == str(kubeconfig)
    )
    version = subprocess.run(
        ["kubectl", "--kubeconfig", str(kubeconfig), "version", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if version.returncode == 0:
        assert json.loads(version.stdout)["serverVersion"]["gitVersion"] == kube.KUBERNETES_VERSION
    stopped = subprocess.run(
        [*command, "stop", "--kubeconfig", str(kubeconfig)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert stopped.returncode == 0, stopped.stderr
    assert _wait_gone([state["supervisor"], *state["pids"].values()]) == []
    assert not kubeconfig.exists()
