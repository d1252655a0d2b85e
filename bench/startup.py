"""Start-up of `specc validate` against `kubectl kustomize` of one small overlay.

    python bench/startup.py [--fleet fleet] [--runs 10] [--cold]

Each run is a fresh process, as in a pre-commit hook or a CI step. Reported: the median
wall time and CPU time (user+sys of the child, steadier than wall time on a shared
machine) of both tools, their ratio, and specc's start-up split measured inside the
process: interpreter start, imports, load, validate (types and cross-checks), compile,
schema check, output. ``--cold`` gives every specc run an empty store (SPECC_CACHE_DIR:
converted schemas, the spec models' validators, the kept schema verdicts), as on a first
run; by default the store is warm, as from the second run on.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OVERLAY = ROOT / "bench" / "startup" / "overlay"

#: Runs in the child: the phases of `specc validate` timed one by one, then printed as JSON
#: on stderr (stdout carries validate's own line, as the command prints it).
_SPLIT = r"""
import time
t0 = time.perf_counter()
import gc, json, os, sys
gc.disable()
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
from pathlib import Path
import click
import specc.cli
from specc.check import CrdSchemas, check_objects
from specc.compile import compile_fleet, fleet_crd_sources
from specc.load import load_fleet
from specc.validate import validate_fleet
t1 = time.perf_counter()
loaded = load_fleet(Path(sys.argv[1]))
t2 = time.perf_counter()
fleet = validate_fleet(loaded)
t3 = time.perf_counter()
renders = compile_fleet(fleet, None)
t4 = time.perf_counter()
crds = CrdSchemas.from_documents(fleet_crd_sources(fleet))
findings = [f for r in renders for f in check_objects(r.objects, r.kubernetes_version, crds)]
assert not findings, findings
t5 = time.perf_counter()
click.echo(f"fleet {fleet.fleet.metadata.name} is valid: {len(fleet.clusters)} clusters, "
           f"{len(fleet.teams)} teams, {len(fleet.apps)} apps")
t6 = time.perf_counter()
print(json.dumps({"imports": t1 - t0, "load": t2 - t1, "validate": t3 - t2,
                  "compile": t4 - t3, "check": t5 - t4, "output": t6 - t5}), file=sys.stderr)
"""


def _timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """Run ``cmd``; return (wall s, child CPU s, stderr)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    run = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if run.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({run.returncode}):\n{run.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, run.stderr


def _specc_command() -> list[str]:
    script = Path(sys.executable).with_name("specc")
    return [str(script)] if script.exists() else [sys.executable, "-m", "specc"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fleet", type=Path, default=ROOT / "fleet")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--cold", action="store_true", help="an empty store each run")
    args = parser.parse_args()
    kubectl = shutil.which("kubectl")
    store = Path(tempfile.mkdtemp(prefix="specc-store-"))

    def env() -> dict[str, str]:
        if args.cold:
            shutil.rmtree(store, ignore_errors=True)
        return {**os.environ, "SPECC_CACHE_DIR": str(store)}

    specc = [*_specc_command(), "validate", str(args.fleet)]
    _timed(specc, env())  # fills the store (when warm) and the page cache
    if kubectl:
        _timed([kubectl, "kustomize", str(OVERLAY)])
    rows: dict[str, list[tuple[float, float]]] = {"specc validate": [], "kubectl kustomize": []}
    interpreter: list[float] = []
    split: list[dict[str, float]] = []
    for _ in range(args.runs):
        # Interleaved, so that a burst of load elsewhere hits both tools alike.
        rows["specc validate"].append(_timed(specc, env())[:2])
        if kubectl:
            rows["kubectl kustomize"].append(_timed([kubectl, "kustomize", str(OVERLAY)])[:2])
        interpreter.append(_timed([sys.executable, "-c", "pass"])[0])
        _, _, err = _timed([sys.executable, "-c", _SPLIT, str(args.fleet)], env())
        split.append(json.loads(err.strip().splitlines()[-1]))
    shutil.rmtree(store, ignore_errors=True)

    print(f"{args.runs} runs each, schema store {'cold' if args.cold else 'warm'}")
    print(f"{'':20} {'wall median':>12} {'CPU median':>12}")
    medians: dict[str, tuple[float, float]] = {}
    for name, values in rows.items():
        if not values:
            print(f"{name:20} (not installed)")
            continue
        wall = statistics.median(v[0] for v in values)
        cpu = statistics.median(v[1] for v in values)
        medians[name] = (wall, cpu)
        print(f"{name:20} {wall * 1000:10.0f} ms {cpu * 1000:10.0f} ms")
    if len(medians) == 2:
        (sw, sc), (kw, kc) = medians["specc validate"], medians["kubectl kustomize"]
        print(f"specc / kustomize: {sw / kw:.2f}x wall, {sc / kc:.2f}x CPU")
    print("specc validate split (median wall, in-process):")
    print(f"  {'interpreter':12} {statistics.median(interpreter) * 1000:6.0f} ms  (python -c pass)")
    for phase in ("imports", "load", "validate", "compile", "check", "output"):
        print(f"  {phase:12} {statistics.median(s[phase] for s in split) * 1000:6.0f} ms")


if __name__ == "__main__":
    main()
