"""The spec models' validators, built from core schemas kept between runs.

pydantic turns each model's annotations into a core schema when the class is created,
and that Python-side work was ~40 % of a ``specc validate`` of the example fleet (~65
models, every one of them built on every start). The schema depends only on the spec
modules' source and on the pydantic and Python that built it, so the models are declared
with ``defer_build`` and :func:`install` gives each its validator and serializer from a
pickle of the schemas, stored in specc's cache directory (:mod:`specc.cachedir`) under a
name hashing those inputs. On a miss pydantic builds them as it would have at import, and
the result is stored for the next start. Rebuilding a validator from a stored schema is
pydantic-core's own pickle support (``SchemaValidator`` and ``SchemaSerializer`` reduce to
their schema and config), done in Rust.

The pickle holds references to specc's validator functions and classes and to pydantic's,
by name; it is read only from the cache directory specc writes, the same trust as the
interpreter's bytecode cache. A file that cannot be read or does not match the models
(another specc, a half-written file) is ignored and rewritten: the models are then built
as without a store, never an error.
"""

from __future__ import annotations

import pickle
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pydantic
import pydantic_core
from pydantic import BaseModel

from specc.cachedir import cache_root, code_digest, write_entry

#: Bumped when the stored form changes.
_FORMAT = "1"

#: specc modules outside specc/spec whose definitions the models' annotations use: their
#: source is part of the key (tests/test_prebuilt.py checks the list against the imports).
EXTRA_SOURCES = ("specc.quantity",)

#: How the last :func:`install` got the validators: "stored", "built" (and stored),
#: or "off" (no store): for tests and ``bench/``.
last_source = ""


def install(models: Sequence[type[BaseModel]]) -> None:
    """Complete every model of ``models`` (declared with ``defer_build``), from the store if it can."""
    global last_source
    file = _file(models)
    if file is not None and _attach(file, models):
        last_source = "stored"
        return
    for model in models:
        model.model_rebuild()
    last_source = "off"
    if file is not None and _store(file, models):
        last_source = "built"


def _name(model: type[BaseModel]) -> str:
    return f"{model.__module__}:{model.__qualname__}"


def _file(models: Sequence[type[BaseModel]]) -> Path | None:
    root = cache_root()
    if root is None:
        return None
    spec_dir = Path(__file__).parent
    sources = sorted(spec_dir.glob("*.py"))
    for module in EXTRA_SOURCES:
        sources.append(spec_dir.parent.joinpath(*module.split(".")[1:]).with_suffix(".py"))
    versions = (_FORMAT, sys.version, pydantic.VERSION, pydantic_core.__version__)
    digest = code_digest((*versions, *(_name(m) for m in models)), sources)
    return root / "models" / f"{digest}.pickle" if digest else None


def _attach(file: Path, models: Sequence[type[BaseModel]]) -> bool:
    """Give each model its stored validator and serializer; False if the store has none."""
    try:
        stored = pickle.loads(file.read_bytes())
    except Exception:  # missing, damaged or foreign: a miss, built below
        return False
    if not isinstance(stored, dict) or list(stored) != [_name(m) for m in models]:
        return False
    entries = [stored[_name(m)] for m in models]
    if not all(_well_formed(entry) for entry in entries):
        return False
    for model, (schema, validator, serializer) in zip(models, entries, strict=True):
        # The class attributes pydantic documents on BaseModel, set as its own build sets
        # them; complete last, so pydantic-core never takes a half-installed model as built.
        model.__pydantic_core_schema__ = schema
        model.__pydantic_validator__ = validator
        model.__pydantic_serializer__ = serializer
        model.__pydantic_complete__ = True
    return True


def _well_formed(entry: Any) -> bool:
    return (
        isinstance(entry, tuple)
        and len(entry) == 3
        and isinstance(entry[0], dict)
        and isinstance(entry[1], pydantic_core.SchemaValidator)
        and isinstance(entry[2], pydantic_core.SchemaSerializer)
    )


def _store(file: Path, models: Sequence[type[BaseModel]]) -> bool:
    stored = {
        _name(m): (m.__pydantic_core_schema__, m.__pydantic_validator__, m.__pydantic_serializer__)
        for m in models
    }
    try:
        # One dump: the schemas nested in several models are written once.
        data = pickle.dumps(stored, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # a schema holding something pickle cannot name
        return False
    return write_entry(file, data)
