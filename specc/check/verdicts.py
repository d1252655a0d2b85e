"""Schema verdicts kept between runs: an object that passed is not checked again.

Most of a ``specc validate`` is spent proving again that unchanged objects fit their
schemas: reading each kind's stored schema, cutting it, compiling it, importing the
validator library (together ~60 % of the check of the example fleet). Whether an object
passes depends only on what is sent to the API server, its JSON, and on the schema it
is checked against, so a pass is kept under a hash of both, and of the code deciding it:

- the object's canonical JSON (sorted keys, no NaN): the form the API server receives;
- the kind's schema source: for a built-in kind, the fingerprint of the bundled schema
  file of the Kubernetes version and the apiVersion/kind; for a custom kind, that file
  too (its ObjectMeta checks the metadata) and :meth:`CrdSchemas.identity` of the CRD;
- the code: the check modules' sources and the validator library's binary.

Only passes are kept; a failing object is checked every time, so its findings always
come from the validator. A kind that resolves to no schema, an unserved version, a CRD
whose content cannot be identified or an object that is not JSON gets no key and is
simply checked. Each pass is an empty file ``verdicts/<hash>`` in specc's cache
directory (:mod:`specc.cachedir`), created atomically; a store that cannot be read or
written only makes the check slower. Every image bump makes new passes, so a long-lived
agent would fill its disk with them: a check that keeps one also drops the passes older
than :data:`MAX_AGE` from that pass's folder (a still-current object is then checked
once more and kept again).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
import time
from pathlib import Path
from typing import Any

from specc import __version__
from specc.cachedir import cache_root, code_digest, write_entry
from specc.check.crd import CrdSchemas
from specc.check.kubernetes import KubernetesSchemas
from specc.check.store import file_fingerprint

#: Bumped when what a verdict means changes in a way the fingerprints would not show.
_FORMAT = "1"

#: Kept passes older than this (seconds) are dropped.
MAX_AGE = 30 * 24 * 3600

#: The modules whose code decides a verdict: the check itself, the conversion of
#: built-in and CRD schemas, the cut, and this file.
_DECIDING = ("__init__.py", "kubernetes.py", "crd.py", "prune.py", "verdicts.py")


@functools.cache
def _code_fingerprint() -> str:
    """Hash of the code deciding a verdict ("" when it cannot be read: no memo)."""
    library = _library_fingerprint()
    here = Path(__file__).parent
    return (
        code_digest((_FORMAT, __version__, library), (here / n for n in _DECIDING))
        if library
        else ""
    )


def _library_fingerprint() -> str:
    """Fingerprint of jsonschema_rs's compiled module, found without importing it."""
    spec = importlib.util.find_spec("jsonschema_rs")
    locations = spec.submodule_search_locations if spec else None
    if not locations:
        return ""
    try:
        names = sorted(os.listdir(locations[0]))
    except OSError:
        return ""
    binaries = [n for n in names if n.startswith("jsonschema_rs.") and n.endswith((".so", ".pyd"))]
    found = [file_fingerprint(os.path.join(locations[0], n)) for n in binaries]
    return "\0".join(found) if found and all(found) else ""


class Verdicts:
    """The kept passes, for one check of objects against one Kubernetes version."""

    def __init__(self, directory: str, code: str, schemas: KubernetesSchemas, crds: CrdSchemas):
        self._directory = directory
        self._code = code
        self._schemas = schemas
        self._crds = crds
        self._kinds: dict[tuple[str, str], str] = {}
        self._swept = False

    @classmethod
    def open(cls, schemas: KubernetesSchemas, crds: CrdSchemas) -> Verdicts | None:
        """Return the kept verdicts, or None when the store is off or the code unknown."""
        root = cache_root()
        if root is None:
            return None
        code = _code_fingerprint()
        if not code:
            return None
        return cls(os.path.join(root, "verdicts"), code, schemas, crds)

    def key(self, body: Any) -> str | None:
        """Return the verdict key of one object, or None when it cannot have one."""
        if not isinstance(body, dict):
            return None
        api_version, kind = body.get("apiVersion"), body.get("kind")
        if not isinstance(api_version, str) or not isinstance(kind, str):
            return None
        schema = self._kinds.get((api_version, kind))
        if schema is None:
            schema = self._kinds[(api_version, kind)] = self._schema_identity(api_version, kind)
        if not schema:
            return None
        try:
            text = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError):
            return None  # not JSON (or keys that do not sort): the validator decides
        h = hashlib.sha256(f"{self._code}\0{schema}\0".encode())
        h.update(text.encode())
        return h.hexdigest()

    def _schema_identity(self, api_version: str, kind: str) -> str:
        """Return what identifies the schema an object of this kind is checked against.

        Mirrors the resolution order of :func:`specc.check._resolve`: built-in first,
        then a served CRD version.
        """
        source = self._schemas.source
        if not source:
            return ""
        if self._schemas.knows(api_version, kind):
            return f"builtin\0{source}\0{api_version}\0{kind}"
        found = self._crds.lookup(api_version, kind)
        if found is None or not found.served:
            return ""
        crd = self._crds.identity(api_version, kind)
        return f"crd\0{source}\0{crd}\0{api_version}\0{kind}" if crd else ""

    def _file(self, key: str) -> str:
        return os.path.join(self._directory, key[:2], key)

    def passed(self, key: str) -> bool:
        """Return whether an object of this key passed before."""
        return os.path.exists(self._file(key))

    def record(self, key: str) -> None:
        """Keep that an object of this key passed (silently not, if it cannot be written)."""
        file = self._file(key)
        if write_entry(Path(file), b"") and not self._swept:
            self._swept = True
            _drop_old(os.path.dirname(file), time.time() - MAX_AGE)


def _drop_old(directory: str, before: float) -> None:
    """Remove the kept passes in ``directory`` made before ``before`` (one of 256 folders:
    each check that keeps a pass sweeps one, so the store is swept as it is used)."""
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return
    for entry in entries:
        try:
            if entry.stat().st_mtime < before:
                os.unlink(entry.path)
        except OSError:
            pass  # gone already (another specc swept it) or not ours to remove
