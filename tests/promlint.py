"""A linter for a /metrics exposition: ``promtool check metrics``, or the same checks built.

``promtool check metrics`` runs client_golang's ``promlint`` on what it reads. Where no
promtool is installed, :func:`metrics_linter` builds a ten-line Go program around that
same package from the local Go module cache, offline (no download), and caches it in
``~/.cache/specc/promlint``. It returns None with the reason when neither is possible.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

CACHE = Path.home() / ".cache" / "specc" / "promlint"

_MAIN = """\
// What `promtool check metrics` runs: promlint over the exposition on stdin.
package main

import (
	"fmt"
	"os"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
)

func main() {
	problems, err := promlint.New(os.Stdin).Lint()
	if err != nil {
		fmt.Println("error while linting:", err)
		os.Exit(1)
	}
	for _, p := range problems {
		fmt.Printf("%s %s\\n", p.Metric, p.Text)
	}
	if len(problems) > 0 {
		os.Exit(3)
	}
}
"""


def metrics_linter() -> tuple[list[str] | None, str]:
    """Return the command that lints an exposition on stdin, and what it is (or why none)."""
    promtool = os.environ.get("SPECC_PROMTOOL") or shutil.which("promtool")
    if promtool:
        return [promtool, "check", "metrics"], f"{promtool} check metrics"
    built = CACHE / "promlint"
    if built.exists():
        return [str(built)], f"promlint ({built})"
    go = shutil.which("go") or (
        "/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists() else None
    )
    if not go:
        return None, "no promtool on PATH (SPECC_PROMTOOL) and no Go to build promlint"
    cache = subprocess.run([go, "env", "GOMODCACHE"], capture_output=True, text=True, check=False)
    versions = _cached(Path(cache.stdout.strip()) / "cache" / "download")
    if versions is None:
        return None, "no promtool, and client_golang is not in the Go module cache (offline)"
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "main.go").write_text(_MAIN)
        requires = "\n".join(f"\t{mod} {ver}" for mod, ver in versions.items())
        Path(tmp, "go.mod").write_text(f"module promlint\n\ngo 1.22\n\nrequire (\n{requires}\n)\n")
        CACHE.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "GOFLAGS": "-mod=mod", "GOPROXY": "off", "GOSUMDB": "off"}
        out = subprocess.run(
            [go, "build", "-o", str(built), "."], cwd=tmp, env=env, capture_output=True, text=True
        )
    if out.returncode != 0:
        return None, f"no promtool, and promlint did not build offline: {out.stderr[-300:]}"
    return [str(built)], f"promlint ({built}, built from the module cache)"


def _cached(download: Path) -> dict[str, str] | None:
    """Return the newest cached version of each module promlint needs, or None."""
    need = [
        "github.com/prometheus/client_golang",
        "github.com/prometheus/client_model",
        "github.com/prometheus/common",
        "google.golang.org/protobuf",
    ]
    out = {}
    for mod in need:
        at = download / mod / "@v"
        zips = sorted(p.name[: -len(".zip")] for p in at.glob("*.zip")) if at.is_dir() else []
        if not zips:
            return None
        out[mod] = max(zips, key=_version_key)
    return out


def _version_key(version: str) -> tuple[int, ...]:
    core = version.lstrip("v").split("-")[0]
    return tuple(int(p) if p.isdigit() else 0 for p in core.split("."))
