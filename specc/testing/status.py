"""API errors as the real server shapes them: ``kind: Status`` bodies.

Each constructor mirrors one in ``k8s.io/apimachinery/pkg/api/errors`` so that clients
(``kubernetes.dynamic.exceptions.ConflictError``, ``NotFoundError``, kubectl) recognise
them by ``reason`` and ``code``.
"""

from __future__ import annotations

from typing import Any

from specc.testing.validation import Cause


class ApiError(Exception):
    """An HTTP error answered with a Status body."""

    def __init__(
        self,
        code: int,
        message: str,
        reason: str = "",
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason
        self.details = details
        self.headers = headers or {}

    def status(self) -> dict[str, Any]:
        """Return the Status body."""
        return status_body(self.code, self.message, self.reason, self.details)


def status_body(
    code: int, message: str, reason: str = "", details: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Return a failure Status body (fields in the order the server writes them)."""
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
    }
    if reason:
        body["reason"] = reason
    if details is not None:
        body["details"] = details
    body["code"] = code
    return body


def _qualified(group: str, plural: str) -> str:
    return f"{plural}.{group}" if group else plural


def _details(group: str, plural: str, name: str) -> dict[str, Any]:
    details: dict[str, Any] = {"name": name}
    if group:
        details["group"] = group
    details["kind"] = plural
    return details


def not_found(group: str, plural: str, name: str) -> ApiError:
    """Return ``NotFound``: ``configmaps "x" not found``."""
    return ApiError(
        404,
        f'{_qualified(group, plural)} "{name}" not found',
        "NotFound",
        _details(group, plural, name),
    )


def already_exists(group: str, plural: str, name: str) -> ApiError:
    """Return ``AlreadyExists`` for a create over an existing object."""
    return ApiError(
        409,
        f'{_qualified(group, plural)} "{name}" already exists',
        "AlreadyExists",
        _details(group, plural, name),
    )


def stale(group: str, plural: str, name: str) -> ApiError:
    """Return the optimistic-concurrency ``Conflict`` of a write with a stale resourceVersion."""
    return ApiError(
        409,
        f'Operation cannot be fulfilled on {_qualified(group, plural)} "{name}": the object has '
        "been modified; please apply your changes to the latest version and try again",
        "Conflict",
        _details(group, plural, name),
    )


def invalid(group: str, kind: str, name: str, causes: list[Cause]) -> ApiError:
    """Return ``Invalid`` (422) with one cause per field error."""
    qualified = f"{kind}.{group}" if group else kind
    joined = ", ".join(str(c) for c in causes)
    summary = joined if len(causes) == 1 else f"[{joined}]"
    details: dict[str, Any] = {"name": name}
    if group:
        details["group"] = group
    details["kind"] = kind
    details["causes"] = [c.to_dict() for c in causes]
    return ApiError(422, f'{qualified} "{name}" is invalid: {summary}', "Invalid", details)


def bad_request(message: str) -> ApiError:
    """Return ``BadRequest`` (400)."""
    return ApiError(400, message, "BadRequest")


def internal(message: str) -> ApiError:
    """Return a 500 without reason, as the server answers typed-conversion failures."""
    return ApiError(500, message)


def method_not_allowed(method: str) -> ApiError:
    """Return ``MethodNotAllowed`` (405)."""
    return ApiError(
        405,
        "the server does not allow this method on the requested resource",
        "MethodNotAllowed",
        {},
    )


def unsupported_media_type(custom_resource: bool) -> ApiError:
    """Return ``UnsupportedMediaType`` (415) for a PATCH of a type the resource does not take.

    Worded as kube-apiserver 1.36 answers: a built-in kind's bare "415: Unsupported Media
    Type" with empty details; a custom resource's list of its patch types (no strategic).
    """
    if custom_resource:
        return ApiError(
            415,
            "the body of the request was in an unknown format - accepted media types include: "
            "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
            "UnsupportedMediaType",
        )
    return ApiError(415, "415: Unsupported Media Type", "UnsupportedMediaType", {})
