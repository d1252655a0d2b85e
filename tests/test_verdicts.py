"""Kept verdicts (specc.check.verdicts): a check with them finds exactly what a check
without them finds, an object or schema that changed is checked again, and a warm start
whose objects all passed before loads no validator at all."""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from specc.cachedir import MAX_AGE
from specc.check import CrdSchemas, check_objects
from specc.check.kubernetes import KubernetesSchemas
from specc.check.verdicts import Verdicts
from specc.compile import compile_fleet, fleet_crd_sources
from specc.errors import Position
from specc.objects import ClusterRender, DesiredObject
from specc.pipeline import validate_path
from tests.helpers import edit, widget_crd
from tests.test_schema_prune import _broken, _paths, _set

ROOT = Path(__file__).resolve().parent.parent
FLEET = ROOT / "fleet"


def _findings(objects: list[DesiredObject], version: str, crds: CrdSchemas) -> list[str]:
    return sorted(
        f"{f.position} {f.subject} {f.field_path} {f.message}"
        for f in check_objects(objects, version, crds)
    )


@pytest.fixture(scope="module")
def renders() -> tuple[list[ClusterRender], CrdSchemas]:
    fleet = validate_path(FLEET)
    return compile_fleet(fleet, None), CrdSchemas.from_documents(fleet_crd_sources(fleet))


def _kept(store: Path) -> list[Path]:
    directory = store / "verdicts"
    return sorted(p for p in directory.rglob("*") if p.is_file()) if directory.exists() else []


@pytest.mark.parametrize("seed", range(4))
def test_kept_verdicts_find_what_the_validator_finds(
    seed: int,
    renders: tuple[list[ClusterRender], CrdSchemas],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    found, crds = renders
    for render in found:
        # Half the objects broken, half as compiled: hits and misses in one check.
        broken = _broken(render.objects, seed)
        objects = [
            b if i % 2 else o for i, (o, b) in enumerate(zip(render.objects, broken, strict=True))
        ]
        monkeypatch.setenv("SPECC_CACHE_DIR", "off")
        plain = _findings(objects, render.kubernetes_version, crds)
        monkeypatch.setenv("SPECC_CACHE_DIR", str(tmp_path))
        cold = _findings(objects, render.kubernetes_version, crds)
        kept = len(_kept(tmp_path))
        warm = _findings(objects, render.kubernetes_version, crds)
        assert plain == cold == warm
        assert plain, "the broken objects are found broken"
        assert kept and len(_kept(tmp_path)) == kept, "passes are kept once, failures never"
        # The broken objects, now with every intact one kept: still the same findings.
        assert _findings(broken, render.kubernetes_version, crds) == sorted(
            _findings_off(broken, render.kubernetes_version, crds, monkeypatch, tmp_path)
        )


def _findings_off(
    objects: list[DesiredObject],
    version: str,
    crds: CrdSchemas,
    monkeypatch: pytest.MonkeyPatch,
    store: Path,
) -> list[str]:
    monkeypatch.setenv("SPECC_CACHE_DIR", "off")
    try:
        return _findings(objects, version, crds)
    finally:
        monkeypatch.setenv("SPECC_CACHE_DIR", str(store))


def _object(body: dict[str, Any]) -> DesiredObject:
    return DesiredObject(body, Position("apps/x.yaml", 1, 1))


_DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "shop"},
    "spec": {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
        },
    },
}


def test_a_changed_object_is_checked_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPECC_CACHE_DIR", str(tmp_path))
    good = copy.deepcopy(_DEPLOYMENT)
    assert check_objects([_object(good)], "1.33") == []
    assert len(_kept(tmp_path)) == 1
    bad = copy.deepcopy(good)
    bad["spec"]["template"]["spec"]["containers"][0]["image"] = 7
    (finding,) = check_objects([_object(bad)], "1.33")
    assert finding.field_path == "spec.template.spec.containers[0].image"
    # Reordered keys are the same JSON: the same verdict, kept once.
    reordered = {k: good[k] for k in reversed(list(good))}
    assert check_objects([_object(reordered)], "1.33") == []
    assert len(_kept(tmp_path)) == 1


def test_the_kubernetes_version_is_part_of_the_verdict(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPECC_CACHE_DIR", str(tmp_path))
    body = copy.deepcopy(_DEPLOYMENT)
    container = body["spec"]["template"]["spec"]["containers"][0]
    # In-place resize arrived in 1.27: 1.26 prunes the field, so it is unknown there.
    container["resizePolicy"] = [{"resourceName": "cpu", "restartPolicy": "NotRequired"}]
    assert check_objects([_object(body)], "1.33") == []
    (finding,) = check_objects([_object(body)], "1.26")
    assert "resizePolicy" in finding.field_path


def _crd(prop_type: str, served: bool = True) -> dict[str, Any]:
    return widget_crd({"size": {"type": prop_type}}, served)


def test_a_changed_crd_is_checked_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPECC_CACHE_DIR", str(tmp_path))
    widget = _object(
        {
            "apiVersion": "example.com/v1",
            "kind": "Widget",
            "metadata": {"name": "w", "namespace": "shop"},
            "spec": {"size": "large"},
        }
    )
    assert check_objects([widget], "1.33", CrdSchemas.from_documents([_crd("string")])) == []
    assert len(_kept(tmp_path)) == 1
    (stricter,) = check_objects([widget], "1.33", CrdSchemas.from_documents([_crd("integer")]))
    assert stricter.field_path == "spec.size"
    (unserved,) = check_objects(
        [widget], "1.33", CrdSchemas.from_documents([_crd("string", False)])
    )
    assert "does not serve" in unserved.message
    (unknown,) = check_objects([widget], "1.33", CrdSchemas())
    assert "unknown kind" in unknown.message
    # The kept pass of the first CRD still holds for it.
    assert check_objects([widget], "1.33", CrdSchemas.from_documents([_crd("string")])) == []


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**40), max_value=2**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(["", "x", "1Gi", "500m", "Always", "TCP", "web", "-1"]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["a", "name", "port"]), inner, max_size=3)
    ),
    max_leaves=6,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(pick=st.integers(min_value=0), where=st.integers(min_value=0), value=_JSON)
def test_any_edit_gets_the_validators_verdict(
    pick: int,
    where: int,
    value: Any,
    renders: tuple[list[ClusterRender], CrdSchemas],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # One store for every example: earlier examples' passes are there to be (mis)used.
    found, crds = renders
    render = found[pick % len(found)]
    obj = render.objects[pick % len(render.objects)]
    body = copy.deepcopy(obj.body)
    paths = [p for p in _paths(body) if p[0] not in ("apiVersion", "kind")]
    _set(body, paths[where % len(paths)], value)
    edited = [dataclasses.replace(obj, body=body)]
    version = render.kubernetes_version
    monkeypatch.setenv("SPECC_CACHE_DIR", str(tmp_path))
    kept = _findings(edited, version, crds), _findings(edited, version, crds)
    assert kept[0] == kept[1] == _findings_off(edited, version, crds, monkeypatch, tmp_path)


_PROBE = r"""
import atexit, json, sys
from specc.cli import main
# main() ends the process; what it imported is seen by an exit handler.
atexit.register(lambda: print(json.dumps({"validator": "jsonschema_rs" in sys.modules})))
sys.argv = ["specc", "validate", sys.argv[1]]
main()
"""


def _probe(fleet: Path, store: Path) -> dict[str, Any]:
    run = subprocess.run(
        [sys.executable, "-c", _PROBE, str(fleet)],
        capture_output=True,
        text=True,
        env={**os.environ, "SPECC_CACHE_DIR": str(store)},
        cwd=ROOT,
        check=False,
    )
    result: dict[str, Any] = json.loads(run.stdout.strip().splitlines()[-1])
    result["code"] = run.returncode
    result["out"] = run.stdout + run.stderr
    return result


def test_a_warm_start_loads_no_validator(tmp_path: Path, fleet: Path) -> None:
    store = tmp_path / "store"
    first = _probe(FLEET, store)
    assert first["code"] == 0 and first["validator"], first["out"]
    warm = _probe(FLEET, store)
    assert warm["code"] == 0 and not warm["validator"], warm["out"]
    # One object edited to be wrong: its kind is checked, and the error reported.
    edit(
        fleet,
        "apps/platform/etcd-operator.yaml",
        "      kind: ServiceAccount\n",
        "      kind: ServiceAccount\n      automountServiceAccountTokn: false\n",
    )
    broken = _probe(fleet, store)
    assert broken["code"] == 1 and broken["validator"], broken["out"]
    assert "automountServiceAccountTokn" in broken["out"]
    assert "did you mean 'automountServiceAccountToken'" in broken["out"]


def test_old_passes_are_dropped_as_the_store_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPECC_CACHE_DIR", str(tmp_path))
    memo = Verdicts.open(KubernetesSchemas("1.33"), CrdSchemas())
    assert memo is not None
    folder = tmp_path / "verdicts" / "ab"
    folder.mkdir(parents=True)
    old, recent = folder / ("ab" + "1" * 62), folder / ("ab" + "2" * 62)
    for file in (old, recent):
        file.touch()
    month_ago = time.time() - MAX_AGE - 3600
    os.utime(old, (month_ago, month_ago))
    memo.record("ab" + "3" * 62)
    assert memo.passed("ab" + "3" * 62)
    assert not old.exists() and recent.exists()
