"""Where specc keeps what it derives from its own code and inputs between runs.

``$SPECC_CACHE_DIR``, else ``$XDG_CACHE_HOME/specc``, else ``~/.cache/specc``;
``SPECC_CACHE_DIR=off`` (or empty, or ``0``) turns every such store off. What is kept
there is only ever a faster way to a result specc can compute again, so a store that
cannot be read or written is ignored, never an error.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path


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


def code_digest(parts: Iterable[str], sources: Iterable[Path]) -> str:
    """Return a hash of ``parts`` (format tags, versions) and of the files ``sources``: what
    names the code a stored entry was made by. "" when a source cannot be read (a zipped
    install): nothing is then stored."""
    h = hashlib.sha256("\0".join(parts).encode())
    try:
        for source in sources:
            h.update(b"\0" + source.name.encode() + b"\0" + source.read_bytes())
    except OSError:
        return ""
    return h.hexdigest()
