"""The store of converted schemas: a hit gives what a build gives, a changed input or
converter is rebuilt, and a store that is off or unwritable changes nothing but speed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from specc.cachedir import file_fingerprint
from specc.check import crd_json_schema, store
from specc.check.crd import CrdSchemas, LazyCrd
from specc.check.kubernetes import _schema_set, _standalone
from specc.compile.monitoring import lazy_operator_crds
from tests.helpers import widget_crd

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def cache_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SPECC_CACHE_DIR", str(tmp_path))
    store.cache_dir.cache_clear()
    yield tmp_path / "schemas"
    store.cache_dir.cache_clear()


def _files(directory: Path) -> list[Path]:
    return sorted(directory.rglob("*.json")) if directory.exists() else []


def test_hit_equals_build_and_digest_is_by_content(cache_in: Path) -> None:
    calls: list[int] = []

    def build() -> dict[str, object]:
        calls.append(1)
        return {"type": "object", "properties": {"a": {"type": "string"}}}

    first, d1 = store.cached(("t", "input-1"), build)
    second, d2 = store.cached(("t", "input-1"), build)
    assert first == second and d1 == d2
    assert len(calls) == 1
    assert len(_files(cache_in)) == 1
    # Another input with the same value: built again, same digest (one compiled validator).
    _, d3 = store.cached(("t", "input-2"), build)
    assert len(calls) == 2 and d3 == d1


def test_kubernetes_kind_from_the_store_is_the_built_schema(cache_in: Path) -> None:
    s = _schema_set("1.33")
    name = s.gvk[("apps", "v1", "Deployment")]
    built = _standalone(s.defs, name, "apps/v1", "Deployment")
    stored, _ = s.standalone(name, "apps/v1", "Deployment")
    again, _ = s.standalone(name, "apps/v1", "Deployment")
    assert stored == built == again
    assert _files(cache_in), "the kind's schema was stored"


def test_bundled_crd_from_the_store_is_the_converted_schema(cache_in: Path) -> None:
    crds = CrdSchemas.from_documents(lazy_operator_crds())
    api, kind = "monitoring.coreos.com/v1", "ServiceMonitor"
    found = crds.lookup(api, kind)
    assert found is not None and found.fingerprint
    converted = crd_json_schema(found.openapi(), api, kind)
    assert crds.schema(api, kind) == converted
    fresh = CrdSchemas.from_documents(lazy_operator_crds())
    assert fresh.schema(api, kind) == converted  # read back from the store


def test_changed_input_is_rebuilt(cache_in: Path, tmp_path: Path) -> None:
    crd_file = tmp_path / "crd.json"

    def lazy(prop: str) -> LazyCrd:
        crd = widget_crd({prop: {"type": "string"}})
        crd_file.write_text(json.dumps(crd))
        stat = os.stat(crd_file)
        os.utime(crd_file, ns=(stat.st_atime_ns, stat.st_mtime_ns + len(prop)))
        return LazyCrd(crd, lambda: crd, file_fingerprint(crd_file))

    obj = {"apiVersion": "example.com/v1", "kind": "Widget", "spec": {"size": "x"}}
    one = CrdSchemas.from_documents([lazy("size")])
    assert one.validator("example.com/v1", "Widget").is_valid(obj)  # type: ignore[union-attr]
    two = CrdSchemas.from_documents([lazy("colour")])
    assert not two.validator("example.com/v1", "Widget").is_valid(obj)  # type: ignore[union-attr]


def test_off_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPECC_CACHE_DIR", "off")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    store.cache_dir.cache_clear()
    try:
        value, _ = store.cached(("t", "x"), lambda: {"a": 1})
        assert value == {"a": 1}
        assert not any(tmp_path.rglob("*.json"))
    finally:
        store.cache_dir.cache_clear()


def test_validate_with_an_unwritable_store(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    env = {**os.environ, "SPECC_CACHE_DIR": str(blocked)}
    for _ in range(2):
        run = subprocess.run(
            [sys.executable, "-m", "specc", "validate", str(ROOT / "fleet")],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        assert run.returncode == 0, run.stderr
        assert "is valid" in run.stdout
