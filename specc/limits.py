"""Size limits the API server enforces on an object's content, checked before any request.

ValidateConfigMap and ValidateSecret (k8s.io/kubernetes pkg/apis/core/validation) refuse
more than ``MaxSecretSize`` (1 MiB) of values: a ConfigMap counts its ``data`` values
and its ``binaryData`` bytes, a Secret its ``data`` bytes (``stringData`` merged in).
ValidateAnnotations refuses more than 256 KiB of annotation keys and values.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from specc.errors import Finding
from specc.objects import DesiredObject

MAX_VALUES_BYTES = 1 << 20
MAX_ANNOTATIONS_BYTES = 256 << 10


def _decoded_len(value: Any) -> int:
    if not isinstance(value, str):
        return 0
    try:
        return len(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError):
        return len(value)  # the schema check reports the bad base64


def _text_len(value: Any) -> int:
    return len(value.encode("utf-8")) if isinstance(value, str) else 0


def _mapping(body: dict[str, Any], key: str) -> dict[str, Any]:
    value = body.get(key)
    return value if isinstance(value, dict) else {}


def values_size(body: dict[str, Any]) -> int:
    """Return the bytes of values the API server counts for a ConfigMap or Secret."""
    data = _mapping(body, "data")
    if body.get("kind") == "ConfigMap":
        binary = _mapping(body, "binaryData")
        return sum(_text_len(v) for v in data.values()) + sum(
            _decoded_len(v) for v in binary.values()
        )
    string_data = _mapping(body, "stringData")
    merged = {k: _decoded_len(v) for k, v in data.items()}
    merged.update({k: _text_len(v) for k, v in string_data.items()})
    return sum(merged.values())


def size_findings(objects: list[DesiredObject]) -> list[Finding]:
    """Return a finding for each object over a size limit of the API server."""
    out = []
    for obj in objects:
        body = obj.body
        if body.get("apiVersion") == "v1" and body.get("kind") in ("ConfigMap", "Secret"):
            size = values_size(body)
            if size > MAX_VALUES_BYTES:
                out.append(
                    Finding(
                        obj.position_of(("data",)),
                        f"{obj.kind} values are {size} bytes, over the API server's limit of "
                        f"{MAX_VALUES_BYTES} (1 MiB): split the data, or mount it from an image "
                        "or a volume",
                        "data",
                        obj.ref,
                    )
                )
        meta = body.get("metadata")
        notes = meta.get("annotations") if isinstance(meta, dict) else None
        if isinstance(notes, dict):
            size = sum(_text_len(k) + _text_len(v) for k, v in notes.items())
            if size > MAX_ANNOTATIONS_BYTES:
                out.append(
                    Finding(
                        obj.position_of(("metadata", "annotations")),
                        f"annotations are {size} bytes, over the API server's limit of "
                        f"{MAX_ANNOTATIONS_BYTES} (256 KiB)",
                        "metadata.annotations",
                        obj.ref,
                    )
                )
    return out
