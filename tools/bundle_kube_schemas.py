"""Write specc/data/kubernetes/: the strict Kubernetes schemas the check stage reads.

kubernetes-validate ships, for each Kubernetes minor version, ~700 per-kind files in
four flavours (108 MB installed); specc reads one file of one flavour per version, the
``vX.Y.0-local-strict/_definitions.json`` (every object ``additionalProperties: false``).
Those files are copied here as they are (same JSON, compact, gzip-compressed: 13 versions
in ~1.7 MB), so that an install of specc, and the pre-commit hook's environment, no
longer carries kubernetes-validate. Run after changing the kubernetes-validate pin (the
`test` extra keeps it, and tests/test_kube_schemas.py checks the copies match it):

    .venv/bin/python tools/bundle_kube_schemas.py [--check]
"""

from __future__ import annotations

import argparse
import gzip
import importlib.metadata
import json
import re
import sys
from importlib import resources
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "specc" / "data" / "kubernetes"
_FLAVOUR = re.compile(r"^v(\d+)\.(\d+)\.0-local-strict$")


def bundle() -> dict[str, bytes]:
    """Return the files of specc/data/kubernetes/ by name, from the installed package."""
    root = resources.files("kubernetes_validate") / "kubernetes-json-schema"
    versions: list[tuple[int, int]] = []
    out: dict[str, bytes] = {}
    for d in root.iterdir():
        m = _FLAVOUR.match(d.name)
        definitions = d / "_definitions.json"
        if not m or not definitions.is_file():
            continue
        minor = (int(m.group(1)), int(m.group(2)))
        versions.append(minor)
        data = json.loads(definitions.read_text(encoding="utf-8"))
        text = json.dumps(data, separators=(",", ":"), sort_keys=True).encode()
        # mtime=0: the same input gives the same bytes, so the copies diff cleanly.
        out[f"v{minor[0]}.{minor[1]}.json.gz"] = gzip.compress(text, 9, mtime=0)
    index = {
        "source": f"kubernetes-validate {importlib.metadata.version('kubernetes-validate')}",
        "flavour": "local-strict",
        "versions": [f"{a}.{b}" for a, b in sorted(versions)],
    }
    out["index.json"] = (json.dumps(index, indent=1, sort_keys=True) + "\n").encode()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the copies are stale")
    args = parser.parse_args()
    files = bundle()
    stale = sorted(
        name
        for name, data in files.items()
        if not (OUT / name).is_file() or (OUT / name).read_bytes() != data
    )
    extra = sorted(p.name for p in OUT.glob("*") if p.name not in files) if OUT.is_dir() else []
    if args.check:
        for name in stale + extra:
            print(f"specc/data/kubernetes/{name}: stale (run tools/bundle_kube_schemas.py)")
        sys.exit(1 if stale or extra else 0)
    OUT.mkdir(parents=True, exist_ok=True)
    for name in extra:
        (OUT / name).unlink()
    for name in stale:
        (OUT / name).write_bytes(files[name])
    print(f"specc/data/kubernetes: {len(files)} files, {len(stale)} written, {len(extra)} removed")


if __name__ == "__main__":
    main()
