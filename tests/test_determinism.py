"""Rendering is deterministic and every rendered object passes the strict schema check."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from specc.pipeline import compile_checked, validate_path
from specc.write import to_yaml, write_render
from tests.render_helpers import EXAMPLE_FLEET

CLUSTERS = [("dev", "dev"), ("stg", "staging"), ("prod-a", "prod"), ("prod-b", "prod")]

names = st.sampled_from(["api", "web", "db", "cache", "queue", "auth", "search", "mail"])
cpu = st.sampled_from([0.1, 0.25, 1, 2, "100m", "250m", "1500m", "0.5", "2"])
memory = st.sampled_from(["64Mi", "1024Mi", "0.5Gi", "1Gi", 134217728, "128M", "1.5Gi"])
# Team totals, in as many spellings: room for any one generated workload at its maximum
# (20 replicas × 2 CPU × 1.5Gi), which the quota check would refuse otherwise.
quota_cpu = st.sampled_from([64, "64", "64000m", 100.5, "1e2"])
quota_memory = st.sampled_from(["64Gi", "65536Mi", "0.0625Ti", 68719476736, "70G"])
env_value = st.one_of(
    st.sampled_from(["x", "a b", "", "on", "3.5"]), st.integers(0, 99), st.booleans()
)
env = st.dictionaries(st.sampled_from(["A", "B_C", "LOG", "MODE"]), env_value, max_size=3)


@st.composite
def ports(draw: st.DrawFn) -> list[dict[str, Any]]:
    chosen = draw(
        st.lists(st.sampled_from(["http", "grpc", "metrics", "admin"]), unique=True, max_size=3)
    )
    out = []
    for i, name in enumerate(chosen):
        port: dict[str, Any] = {"name": name, "port": 8000 + i}
        if draw(st.booleans()):
            port["targetPort"] = 9000 + i
        if draw(st.booleans()):
            port["protocol"] = draw(st.sampled_from(["TCP", "UDP"]))
        out.append(port)
    return out


@st.composite
def workload(draw: st.DrawFn, has_ports: bool) -> dict[str, Any]:
    spec: dict[str, Any] = {"image": f"ghcr.io/acme/app:{draw(st.integers(1, 9))}.0"}
    if draw(st.booleans()):
        spec["env"] = draw(env)
    if draw(st.booleans()):
        spec["config"] = {"literals": {"CFG_" + k: v for k, v in draw(env).items()}}
    if draw(st.booleans()):
        spec["resources"] = {"requests": {"cpu": draw(cpu), "memory": draw(memory)}}
    if has_ports and draw(st.booleans()):
        spec["probes"] = {"readiness": draw(st.sampled_from([{}, {"path": "/ready"}]))}
    if draw(st.booleans()):
        spec["secrets"] = [{"secret": "creds", "key": "token", "env": "TOKEN"}]
    return spec


@st.composite
def service(draw: st.DrawFn, name: str, team: str) -> dict[str, Any]:
    p = draw(ports())
    spec = draw(workload(bool(p)))
    if p:
        spec["ports"] = p
    scaling = draw(st.sampled_from(["none", "replicas", "hpa"]))
    if scaling == "replicas":
        spec["replicas"] = draw(st.integers(0, 5))
    elif scaling == "hpa":
        lo = draw(st.integers(1, 3))
        spec["autoscaling"] = {"minReplicas": lo, "maxReplicas": lo + draw(st.integers(0, 5))}
    if draw(st.booleans()):
        spec["disruptionBudget"] = draw(
            st.sampled_from([{"minAvailable": 1}, {"maxUnavailable": "50%"}])
        )
    spec["zoneSpread"] = draw(st.booleans())
    doc: dict[str, Any] = {
        "apiVersion": "specc.dev/v1alpha1",
        "kind": "Service",
        "metadata": {"name": name, "team": team},
        "spec": spec,
    }
    overrides: dict[str, Any] = {}
    if draw(st.booleans()):
        patch: dict[str, Any] = {"env": draw(env)} if draw(st.booleans()) else {}
        if scaling != "hpa" and draw(st.booleans()):
            patch["replicas"] = draw(st.integers(1, 9))
        overrides["environments"] = {"prod": patch}
    if scaling == "hpa" and draw(st.booleans()):
        overrides["clusters"] = {"prod-b": {"autoscaling": {"maxReplicas": 20}}}
    if overrides:
        doc["overrides"] = overrides
    if draw(st.booleans()):
        doc["placement"] = {"environments": draw(st.sampled_from([["prod"], ["dev", "staging"]]))}
    return doc


@st.composite
def stateful(draw: st.DrawFn, name: str, team: str) -> dict[str, Any]:
    p = draw(ports())
    spec = draw(workload(bool(p)))
    if p:
        spec["ports"] = p
    members = draw(st.integers(1, 5))
    spec.update(
        members=members,
        updatePartition=draw(st.integers(0, members)),
        storage={"size": draw(memory), "whenScaled": draw(st.sampled_from(["Retain", "Delete"]))},
    )
    if draw(st.booleans()):
        spec["backup"] = {"schedule": "0 3 * * *", "image": "x/backup:1", "command": ["/backup"]}
    return {
        "apiVersion": "specc.dev/v1alpha1",
        "kind": "StatefulService",
        "metadata": {"name": name, "team": team},
        "spec": spec,
    }


@st.composite
def fleets(draw: st.DrawFn) -> dict[str, Any]:
    """Return file path → document list of a valid fleet."""
    teams = draw(
        st.lists(st.sampled_from(["red", "blue", "green"]), min_size=1, max_size=2, unique=True)
    )
    files: dict[str, Any] = {
        "fleet.yaml": [
            {
                "apiVersion": "specc.dev/v1alpha1",
                "kind": "Fleet",
                "metadata": {"name": "gen"},
                "spec": {
                    "environments": [
                        {"name": "dev"},
                        {"name": "staging"},
                        {"name": "prod", "defaults": {"replicas": 3}},
                    ],
                    "clusters": [{"name": c, "environment": e} for c, e in CLUSTERS],
                },
            }
        ]
    }
    for team in teams:
        spec: dict[str, Any] = {}
        if draw(st.booleans()):
            spec["quota"] = {"cpu": draw(quota_cpu), "memory": draw(quota_memory), "pods": 50}
        if draw(st.booleans()):
            spec["network"] = {
                "allowFrom": [{"name": "mon", "namespaceSelector": {}, "ports": [9090]}]
            }
        files[f"teams/{team}.yaml"] = [
            {
                "apiVersion": "specc.dev/v1alpha1",
                "kind": "Team",
                "metadata": {"name": team},
                "spec": spec,
            }
        ]
        apps = draw(st.lists(names, max_size=3, unique=True))
        for app in apps:
            kind = draw(st.sampled_from([service, service, stateful]))
            files[f"apps/{team}/{app}.yaml"] = [draw(kind(app, team))]
    return files


def write_tree(root: Path, files: dict[str, Any]) -> None:
    for rel, docs in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump_all(docs, sort_keys=False))


def render_tree(fleet: Path, out: Path) -> dict[str, bytes]:
    for render in compile_checked(validate_path(fleet)):  # raises CheckError on any finding
        write_render(render, out)
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(fleets())
def test_generated_fleets_render_identically_twice_and_pass_the_strict_check(
    files: dict[str, Any],
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_tree(root / "fleet", files)
        first = render_tree(root / "fleet", root / "a")
        second = render_tree(root / "fleet", root / "b")
        assert first == second
        # Writing over an identical render changes nothing.
        assert render_tree(root / "fleet", root / "a") == first


def test_example_fleet_renders_byte_identically_in_processes_with_different_hash_seeds(
    tmp_path: Path,
) -> None:
    trees = []
    for seed in ("1", "2"):
        out = tmp_path / f"out-{seed}"
        env = {**os.environ, "PYTHONHASHSEED": seed}
        cmd = [sys.executable, "-m", "specc", "render", str(EXAMPLE_FLEET), "--out", str(out)]
        subprocess.run(cmd, check=True, capture_output=True, env=env)
        trees.append(
            {
                p.relative_to(out).as_posix(): p.read_bytes().split(b"\n", 1)[1]
                for p in out.rglob("*")
                if p.is_file()
            }
        )
    assert trees[0] == trees[1]
    assert len(trees[0]) > 100


yaml_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63),
    st.floats(allow_nan=False),
    st.text(),
    st.sampled_from(
        [
            *("y", "n", "on", "1e3", "0x1f", "1:20", "2001-12-14", "~", "a: b", "a #b", "- x"),
            *("a\n", "a\n\n", " a\nb", "a \nb", "x\n\ty", "\u2028", "\x7f", "😀", ".5", "=", "<<"),
        ]
    ),
)
yaml_values = st.recursive(
    yaml_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=500, deadline=None)
@given(st.dictionaries(st.text(), yaml_values, max_size=5))
def test_written_yaml_reads_back_as_the_same_object(value: dict[str, Any]) -> None:
    assert yaml.safe_load(to_yaml(value)) == value


def test_strings_other_yaml_readers_take_for_numbers_or_booleans_are_quoted() -> None:
    # go-yaml (kubectl) reads y/n as booleans and 1e3 as a number; PyYAML does not.
    text = to_yaml({"a": "y", "b": "1e3", "c": "1", "d": "on", "e": "text", "f": "ghcr.io/x:1.2"})
    assert text == "a: 'y'\nb: '1e3'\nc: '1'\nd: 'on'\ne: text\nf: ghcr.io/x:1.2\n"


def test_multi_line_strings_are_written_as_literal_blocks() -> None:
    text = to_yaml({"data": {"a.conf": "x {\n  y;\n}\n", "b": "no newline\nat end"}})
    assert (
        text
        == "data:\n  a.conf: |\n    x {\n      y;\n    }\n  b: |-\n    no newline\n    at end\n"
    )
