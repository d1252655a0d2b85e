"""Write specc/data/kubernetes-scopes.json: every built-in kind's scope, per Kubernetes minor.

The scope of a kind is read from the OpenAPI paths of that release
(api/openapi-spec/swagger.json of the Go module k8s.io/kubernetes, fetched from the Go
module proxy): a kind served under ``.../namespaces/{namespace}/...`` is namespaced,
one served only elsewhere is cluster-scoped. Kinds that exist only as subresources
(Scale, Eviction, Binding, TokenRequest) are left out: they are not objects one applies.
Every group the release serves is recorded too, so that a fleet CRD can be refused
when it claims one.

    python3 tools/derive_kubernetes_scopes.py [CACHE_DIR]
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

PROXY = "https://proxy.golang.org/k8s.io/kubernetes/@v"
#: The last patch release of each minor specc checks against (SUPPORTED_VERSIONS).
RELEASES = (
    "v1.27.16",
    "v1.28.15",
    "v1.29.6",
    "v1.30.14",
    "v1.31.14",
    "v1.32.13",
    "v1.33.13",
    "v1.34.4",
    "v1.35.4",
    "v1.36.3",
    "v1.37.2",
)
OUT = Path(__file__).resolve().parent.parent / "specc" / "data" / "kubernetes-scopes.json"
_PATH = re.compile(
    r"^/(?:api|apis/(?P<group>[^/]+))/[^/]+/(?:watch/)?"
    r"(?P<ns>namespaces/\{namespace\}/)?(?P<plural>[^/{]+)(?:/\{name\})?(?P<sub>/[^/]+)?$"
)


def swagger(version: str, cache: Path) -> dict[str, Any]:
    zip_path = cache / f"kubernetes-{version}.zip"
    if not zip_path.exists():
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run(["curl", "-sSfL", "-o", str(zip_path), f"{PROXY}/{version}.zip"], check=True)
    with zipfile.ZipFile(zip_path) as z:
        data: dict[str, Any] = json.loads(
            z.read(f"k8s.io/kubernetes@{version}/api/openapi-spec/swagger.json")
        )
    return data


def scopes(doc: dict[str, Any]) -> tuple[dict[str, bool], list[str]]:
    """Return {Kind.group: namespaced} for the kinds with their own resource, and the groups."""
    out: dict[str, bool] = {}
    groups: set[str] = set()
    for path, item in doc["paths"].items():
        m = _PATH.match(path)
        if not m:
            continue
        group = m.group("group") or ""
        groups.add(group)
        if m.group("sub"):
            continue
        for op in item.values():
            gvk = op.get("x-kubernetes-group-version-kind") if isinstance(op, dict) else None
            if not gvk or gvk["group"] != group or gvk["kind"].endswith("List"):
                continue
            gk = f"{gvk['kind']}.{group}" if group else gvk["kind"]
            out[gk] = out.get(gk, False) or bool(m.group("ns"))
    return dict(sorted(out.items())), sorted(groups)


def main() -> None:
    cache = Path(sys.argv[1]) if len(sys.argv) > 1 else Path.home() / ".cache" / "specc" / "scopes"
    table: dict[str, Any] = {}
    for version in RELEASES:
        kinds, groups = scopes(swagger(version, cache))
        minor = ".".join(version.lstrip("v").split(".")[:2])
        table[minor] = {
            "release": version,
            "groups": groups,
            "namespaced": [k for k, v in kinds.items() if v],
            "cluster": [k for k, v in kinds.items() if not v],
        }
    header = {"_generated": "python3 tools/derive_kubernetes_scopes.py (from swagger.json paths)"}
    OUT.write_text(json.dumps({**header, **table}, indent=0, sort_keys=True) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
