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

Only passes are kept (:class:`specc.cachedir.Passes`, which also sweeps old ones); a
failing object is checked every time, so its findings always come from the validator. A
kind that resolves to no schema, an unserved version, a CRD whose content cannot be
identified or an object that is not JSON gets no key and is simply checked.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from specc import __version__
from specc.cachedir import Passes, code_digest
from specc.check.crd import CrdSchemas
from specc.check.kubernetes import KubernetesSchemas

#: Bumped when what a verdict means changes in a way the fingerprints would not show.
_FORMAT = "2"

#: The modules whose code decides a verdict: the check itself, the conversion of
#: built-in and CRD schemas, the cut, and this file.
_DECIDING = ("__init__.py", "kubernetes.py", "crd.py", "prune.py", "verdicts.py")


@functools.cache
def _code_fingerprint() -> str:
    """Hash of the code deciding a verdict ("" when it cannot be read: no memo)."""
    here = Path(__file__).parent
    return code_digest((_FORMAT, __version__), (here / n for n in _DECIDING), ("jsonschema_rs",))


class Verdicts:
    """The kept passes, for one check of objects against one Kubernetes version."""

    def __init__(self, passes: Passes, schemas: KubernetesSchemas, crds: CrdSchemas):
        self._passes = passes
        self._schemas = schemas
        self._crds = crds
        self._kinds: dict[tuple[str, str], str] = {}

    @classmethod
    def open(cls, schemas: KubernetesSchemas, crds: CrdSchemas) -> Verdicts | None:
        """Return the kept verdicts, or None when the store is off or the code unknown."""
        passes = Passes.open("verdicts", _code_fingerprint())
        return None if passes is None else cls(passes, schemas, crds)

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
        return self._passes.key(schema, text)

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

    def passed(self, key: str) -> bool:
        """Return whether an object of this key passed before."""
        return self._passes.passed(key)

    def record(self, key: str) -> None:
        """Keep that an object of this key passed (silently not, if it cannot be written)."""
        self._passes.record(key)
