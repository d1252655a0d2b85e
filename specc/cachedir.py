"""Where specc keeps what it derives from its own code and inputs between runs.

``$SPECC_CACHE_DIR``, else ``$XDG_CACHE_HOME/specc``, else ``~/.cache/specc``;
``SPECC_CACHE_DIR=off`` (or empty, or ``0``) turns every such store off. What is kept
there is only ever a faster way to a result specc can compute again, so a store that
cannot be read or written is ignored, never an error.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import time
from collections.abc import Iterable
from pathlib import Path

#: Kept passes (:class:`Passes`) older than this (seconds) are dropped.
MAX_AGE = 30 * 24 * 3600


def cache_root() -> Path | None:
    """Return specc's cache directory, or None when caching is off."""
    configured = os.environ.get("SPECC_CACHE_DIR")
    if configured is not None:
        return None if configured in ("", "off", "0") else Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "specc"


def write_entry(file: Path, data: bytes) -> bool:
    """Write one stored entry so that readers see a whole file or none; False if it
    cannot be written (the entry is then only missing, as the module docstring says)."""
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        tmp = file.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, file)
    except OSError:
        return False
    return True


def code_digest(parts: Iterable[str], sources: Iterable[Path], binaries: Iterable[str] = ()) -> str:
    """Return a hash of ``parts`` (format tags, versions), of the files ``sources`` and of
    the compiled modules of the packages ``binaries``: what names the code a stored entry
    was made by. "" when a source or binary cannot be read (a zipped install): nothing is
    then stored."""
    fingerprints = [_binary_fingerprint(package) for package in binaries]
    if not all(fingerprints):
        return ""
    h = hashlib.sha256("\0".join([*parts, *fingerprints]).encode())
    try:
        for source in sources:
            h.update(b"\0" + source.name.encode() + b"\0" + source.read_bytes())
    except OSError:
        return ""
    return h.hexdigest()


def file_fingerprint(path: str | os.PathLike[str]) -> str:
    """Return what identifies one version of an input file ("" if it cannot be read)."""
    try:
        st = os.stat(path)
    except OSError:
        return ""
    return f"{os.fspath(path)}:{st.st_size}:{st.st_mtime_ns}"


def _binary_fingerprint(package: str) -> str:
    """Return the fingerprint of ``package``'s compiled modules, found without importing it
    (importing is what a kept result saves); "" when it has none or they cannot be read."""
    spec = importlib.util.find_spec(package)
    locations = spec.submodule_search_locations if spec else None
    if not locations:
        return ""
    try:
        names = sorted(os.listdir(locations[0]))
    except OSError:
        return ""
    binaries = [n for n in names if n.endswith((".so", ".pyd"))]
    found = [file_fingerprint(os.path.join(locations[0], n)) for n in binaries]
    return "\0".join(found) if found and all(found) else ""


class Passes:
    """The passes of one deterministic check, kept between runs: an input that passed is
    not checked again.

    A pass is an empty file ``<name>/<hash>`` in the cache directory, the hash naming the
    check's code and the input. Only passes are kept, so a failing input is checked every
    time and its findings always come from the check itself. Every edit makes new passes,
    so a long-lived agent would fill its disk with them: recording the first pass of a run
    also drops the passes older than :data:`MAX_AGE` from that pass's folder (one of 256;
    the store is swept as it is used, and a still-current input is checked once more).
    """

    def __init__(self, directory: Path, code: str):
        # A str, joined with os.path: a validate asks for a pass per object, and pathlib's
        # joins cost as much as the rest of the lookup.
        self._directory = os.fspath(directory)
        self._code = code.encode()
        self._swept = False

    @staticmethod
    def open(name: str, code: str) -> Passes | None:
        """Return the kept passes called ``name`` of the check whose code hashes to
        ``code``; None when caching is off or the code is unknown ("")."""
        root = cache_root()
        if root is None or not code:
            return None
        return _opened(root / name, code)

    def key(self, *parts: str) -> str:
        """Return the key of the input made of ``parts``."""
        h = hashlib.sha256(self._code)
        for part in parts:
            h.update(b"\0" + part.encode())
        return h.hexdigest()

    def _file(self, key: str) -> str:
        return os.path.join(self._directory, key[:2], key)

    def passed(self, key: str) -> bool:
        """Return whether the input of this key passed before."""
        return os.path.exists(self._file(key))

    def record(self, key: str) -> None:
        """Keep that the input of this key passed (silently not, if it cannot be written)."""
        file = self._file(key)
        if write_entry(Path(file), b"") and not self._swept:
            self._swept = True
            _drop_old(os.path.dirname(file), time.time() - MAX_AGE)


@functools.cache
def _opened(directory: Path, code: str) -> Passes:
    # One store per folder and process, so that a run sweeps old passes once.
    return Passes(directory, code)


def _drop_old(directory: str, before: float) -> None:
    """Remove the kept passes in ``directory`` made before ``before``."""
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
