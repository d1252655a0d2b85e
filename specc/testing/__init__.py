"""Offline Kubernetes for tests: an API server double with server-side apply.

``ApiServer`` serves the Kubernetes API over HTTP from memory (see
:mod:`specc.testing.apiserver`); :mod:`specc.testing.pytest_plugin` offers it as
fixtures. Names load lazily so that ``python -m specc.testing.apiserver`` does not
import the module twice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from specc.testing.apiserver import ApiServer, serve
    from specc.testing.faults import FaultRule, Faults, RequestLog, RequestRecord

__all__ = ["ApiServer", "FaultRule", "Faults", "RequestLog", "RequestRecord", "serve"]


def __getattr__(name: str) -> Any:
    if name in ("ApiServer", "serve"):
        from specc.testing import apiserver

        return getattr(apiserver, name)
    if name in ("FaultRule", "Faults", "RequestLog", "RequestRecord"):
        from specc.testing import faults

        return getattr(faults, name)
    raise AttributeError(name)
