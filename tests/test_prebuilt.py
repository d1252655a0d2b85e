"""The spec models' stored validators: a start from the store validates, reports and
publishes schemas exactly as pydantic's own build does; a missing, damaged or foreign
store, or none, changes nothing but speed."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

from specc.spec import prebuilt

ROOT = Path(__file__).resolve().parent.parent

#: Runs in a fresh process: how the models were completed, then what they do with good
#: and bad documents of every kind, and the JSON Schemas they publish.
_PROBE = r"""
import json, sys
from pathlib import Path
import pydantic
import specc.spec
from specc.spec import KINDS, prebuilt
from specc.spec.base import MODELS
from specc.load import load_fleet

out = {"source": prebuilt.last_source, "errors": {}, "dumps": {}, "schemas": {}}
fleet = load_fleet(Path(sys.argv[1]))
bad = {
    "Service": {"apiVersion": "specc.dev/v1alpha1", "kind": "Service",
                "metadata": {"name": "Web_1", "team": "a"},
                "spec": {"image": "nginx", "replicas": -1, "ports": [{"port": 0}],
                         "zoneSpread": True, "probes": {"ready": {"port": "no such"}}}},
    "Team": {"apiVersion": "specc.dev/v1alpha1", "kind": "Team",
             "metadata": {"name": "t"}, "spec": {"namespace": "x", "quota": {"cpu": "lots"}}},
    "MonitoringStack": {"apiVersion": "specc.dev/v1alpha1", "kind": "MonitoringStack",
                        "metadata": {"name": "m", "team": "a"},
                        "spec": {"rules": {"groups": [{"name": "g", "rules": [
                            {"alert": "A", "expr": "rate(x[5m]"}]}]}}},
}
for kind, model in KINDS.items():
    docs = [d.data for d in fleet.documents if d.kind == kind]
    for i, data in enumerate([*docs, bad.get(kind, {"kind": kind})]):
        try:
            value = model.model_validate(data)
            out["dumps"][f"{kind}/{i}"] = value.model_dump(mode="json", by_alias=True)
        except pydantic.ValidationError as exc:
            out["errors"][f"{kind}/{i}"] = [
                {"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()
            ]
    out["schemas"][kind] = model.model_json_schema(by_alias=True)
out["complete"] = all(m.__pydantic_complete__ for m in MODELS)
print(json.dumps(out, sort_keys=True, default=str))
"""


def _probe(cache: str) -> dict[str, object]:
    env = {**os.environ, "SPECC_CACHE_DIR": cache}
    run = subprocess.run(
        [sys.executable, "-c", _PROBE, str(ROOT / "fleet")],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    result: dict[str, object] = json.loads(run.stdout)
    return result


def test_stored_validators_behave_as_pydantics_build(tmp_path: Path) -> None:
    built = _probe(str(tmp_path))
    assert built["source"] == "built"
    stored_files = list((tmp_path / "models").glob("*.pickle"))
    assert len(stored_files) == 1
    stored = _probe(str(tmp_path))
    assert stored["source"] == "stored"
    plain = _probe("off")
    assert plain["source"] == "off"
    assert stored["complete"] and plain["complete"]
    assert stored["errors"], "the probe's bad documents must fail"
    assert stored["dumps"], "the example fleet's documents must validate"
    for key in ("errors", "dumps", "schemas"):
        assert stored[key] == plain[key] == built[key], key


def test_a_damaged_or_foreign_store_is_rebuilt(tmp_path: Path) -> None:
    assert _probe(str(tmp_path))["source"] == "built"
    (stored,) = (tmp_path / "models").glob("*.pickle")
    reference = _probe("off")
    for damage in (b"", b"not a pickle", stored.read_bytes()[:100]):
        stored.write_bytes(damage)
        again = _probe(str(tmp_path))
        assert again["source"] == "built"
        assert again["errors"] == reference["errors"]
    # A pickle of something else (another version's layout) is a miss too.
    import pickle

    stored.write_bytes(pickle.dumps({"specc.spec.base:Metadata": ("x", 1, 2)}))
    assert _probe(str(tmp_path))["source"] == "built"
    assert _probe(str(tmp_path))["source"] == "stored"


def test_an_unwritable_store_builds_every_time(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    for _ in range(2):
        result = _probe(str(blocked))
        assert result["source"] == "off"
        assert result["complete"]


def test_the_key_covers_every_module_the_models_are_built_from() -> None:
    """A spec module's definitions may come from another specc module: its source must be
    part of the store's key, or an edit there would read schemas built before it. (What
    validators import when they run is named by reference, not stored.)"""
    imported: set[str] = set()
    for source in (ROOT / "specc" / "spec").glob("*.py"):
        for node in ast.parse(source.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
                if node.module == "specc":
                    names = [f"specc.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            imported.update(
                n for n in names if n.startswith("specc.") and not n.startswith("specc.spec")
            )
    # specc.cachedir only says where the store is.
    assert imported - {"specc.cachedir"} <= set(prebuilt.EXTRA_SOURCES)
