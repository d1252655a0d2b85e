"""Converted schemas kept between runs, so that a start-up does not redo the conversion.

A kind's self-contained schema is cut out of kubernetes-validate's 1.4 MB definitions
file, and a custom kind's JSON Schema is converted from its CRD's ``openAPIV3Schema``
(the prometheus-operator ones are ~0.5 MB); for the example fleet that was a third of
``specc validate``. The result depends only on its input and on the code converting it,
so it is stored as JSON under a name hashing both and read back with one ``json.loads``.

Where: ``schemas/`` in specc's cache directory (:mod:`specc.cachedir`; ``SPECC_CACHE_DIR=off``
turns it off). A cache that cannot be read or written is ignored: the schema is built as
without one, never an error.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from specc import __version__
from specc.cachedir import cache_root, code_digest, write_entry

#: Bumped when the stored form changes in a way the code fingerprint would not show.
_FORMAT = "2"


@functools.cache
def cache_dir() -> Path | None:
    """Return the directory of converted schemas, or None when caching is off."""
    root = cache_root()
    return None if root is None else root / "schemas"


@functools.cache
def _code_fingerprint() -> str:
    """Hash of the code that converts: an edit to it must not read old conversions."""
    from specc.check import crd, kubernetes

    return code_digest((_FORMAT, __version__), (Path(m.__file__ or "") for m in (kubernetes, crd)))


def cached(key: tuple[str, ...], build: Callable[[], Any]) -> tuple[Any, str]:
    """Return ``build()``'s JSON value and a digest of it, from the cache when stored.

    ``key`` names the input (an empty part means "cannot be identified": no caching).
    The digest is the same for equal values whatever their key, so a caller can share
    what it compiles from equal schemas (most kinds are alike across Kubernetes versions).
    """
    directory = cache_dir()
    code = _code_fingerprint()
    if directory is None or not code or not all(key):
        value = build()
        return value, _digest(json.dumps(value, sort_keys=True))
    name = hashlib.sha256("\0".join((code, *key)).encode()).hexdigest()
    file = directory / name[:2] / f"{name}.json"
    # The file is the digest on its first line, then the JSON: a hit hashes nothing.
    try:
        digest, _, text = file.read_text(encoding="utf-8").partition("\n")
        if len(digest) == 64:
            return json.loads(text), digest
    except (OSError, ValueError):
        pass
    value = build()
    text = json.dumps(value, sort_keys=True)
    digest = _digest(text)
    write_entry(file, f"{digest}\n{text}".encode())
    return value, digest


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
