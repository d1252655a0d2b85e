"""`specc diff --base HEAD~1` on a synthetic 500-service fleet in a git repository.

    /work/venv/bin/python bench/diff_speed.py [--apps 500] [--repeat 5] [--keep DIR]

Builds a git repository holding the benchmark fleet (the generator of
bench/render_vs_kustomize.py when present, else a small one here: 3 clusters, N
``Service`` apps → Deployment, Service, ConfigMap, HPA, PDB), then a second commit
shaped like a pull request: 10 image bumps, 5 config changes (hashed ConfigMaps
replaced), 2 apps added, 2 removed, a comment at the top of a team file (sources move).

Times, in this order:

- ``specc diff FLEET --base HEAD~1 -o json`` as a subprocess, end to end, the way CI
  runs it (head = the checked-out working tree; interpreter start, imports, a git
  export of the base, two renders with the schema check, the diff, the output):
  median, best and worst wall time of ``--repeat`` runs, and CPU time of all processes;
- the same with ``-o markdown`` once (the PR comment size is printed);
- in one process: both renders sequentially vs base in a forked worker, and
  ``diff_renders`` alone, for the PR and for a change touching every object.
"""

from __future__ import annotations

import argparse
import copy
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

BENCH = Path(__file__).resolve().parent
SPECC = [sys.executable, "-m", "specc"]
GIT_ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@specc.invalid",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@specc.invalid",
    "GIT_CONFIG_GLOBAL": os.devnull,
}


def write_fleet(root: Path, n: int) -> None:
    """Write the benchmark fleet of ``n`` services under ``root`` (render_vs_kustomize's)."""
    sys.path.insert(0, str(BENCH))
    try:
        from render_vs_kustomize import write_specc_fleet  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(BENCH))
    write_specc_fleet(root, n)


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True, env=GIT_ENV
    )
    return done.stdout.strip()


def make_pull_request(fleet: Path) -> None:
    """Edit the fleet the way a typical pull request does."""
    apps = sorted(fleet.glob("apps/*/*.yaml"))
    for path in apps[:10]:
        text = path.read_text(encoding="utf-8")
        path.write_text(text.replace(".0\n", ".1\n", 1), encoding="utf-8")
    for path in apps[10:15]:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        doc["spec"]["config"]["literals"]["WORKERS"] = "16"
        path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    for i, path in enumerate(apps[15:17]):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        doc["metadata"]["name"] = f"new-{i}"
        (path.parent / f"new-{i}.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    for path in apps[-2:]:
        path.unlink()
    team = sorted(fleet.glob("teams/*.yaml"))[0]
    team.write_text("# Owned by the platform group.\n" + team.read_text(encoding="utf-8"))


def build_repo(root: Path, apps: int) -> Path:
    repo = root / "repo"
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    write_fleet(repo / "fleet", apps)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--no-gpg-sign", "-m", "fleet")
    make_pull_request(repo / "fleet")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--no-gpg-sign", "-m", "a pull request")
    return repo


def time_cli(repo: Path, output: str) -> tuple[float, float, str, int]:
    """Return wall seconds, CPU seconds (all processes), stdout and exit code of one diff."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(
        [*SPECC, "diff", str(repo / "fleet"), "--base", "HEAD~1", "-o", output],
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode not in (0, 1):
        raise SystemExit(f"specc diff failed ({done.returncode}):\n{done.stderr}")
    return wall, cpu, done.stdout, done.returncode


def in_process(repo: Path) -> dict[str, float]:
    from specc import gitrev
    from specc.diff import diff_renders
    from specc.gitrev import render_sides

    # Measure the worker even on a busy machine, where specc diff itself would not use it.
    gitrev.os.getloadavg = lambda: (0.0, 0.0, 0.0)  # type: ignore[attr-defined]

    fleet = repo / "fleet"
    out: dict[str, float] = {}
    render_sides(fleet, "HEAD~1", None, parallel=False)  # warm imports and caches
    for parallel in (False, True):
        start = time.perf_counter()
        before, after = render_sides(fleet, "HEAD~1", None, parallel=parallel)
        out["renders, base in a worker" if parallel else "renders, one process"] = (
            time.perf_counter() - start
        )
    start = time.perf_counter()
    diff_renders(before.renders, after.renders)
    out["diff_renders, the pull request"] = time.perf_counter() - start
    everything = copy.deepcopy(before.renders)
    for render in everything:
        for obj in render.objects:
            obj.body["metadata"].setdefault("labels", {})["bench"] = "x"
    start = time.perf_counter()
    result = diff_renders(before.renders, everything)
    out["diff_renders, every object changed"] = time.perf_counter() - start
    out["objects"] = sum(len(r.objects) for r in before.renders)
    out["changed objects (every)"] = sum(len(c.changed) for c in result.clusters)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="Build the repository here and keep it.")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="specc-diff-bench-"))
    root = args.keep or tmp
    try:
        repo = build_repo(root, args.apps)
        print(
            f"{args.apps} services; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
        )
        walls, cpus = [], []
        for _ in range(args.repeat):
            wall, cpu, _, code = time_cli(repo, "json")
            walls.append(wall)
            cpus.append(cpu)
        print(
            f"specc diff -o json (exit {code}): median {statistics.median(walls):.2f} s, "
            f"best {min(walls):.2f} s, worst {max(walls):.2f} s; "
            f"CPU median {statistics.median(cpus):.2f} s"
        )
        wall, _, md, _ = time_cli(repo, "markdown")
        print(f"specc diff -o markdown: {wall:.2f} s, comment {len(md):,} chars")
        for what, value in in_process(repo).items():
            shown = f"{value:.3f} s" if isinstance(value, float) else f"{value:,}"
            print(f"  {what}: {shown}")
    finally:
        if args.keep is None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
