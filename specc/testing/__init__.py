"""Offline Kubernetes for tests: an API server double with server-side apply.

``ApiServer`` serves the Kubernetes API over HTTP from memory (see
:mod:`specc.testing.apiserver`); ``specc.testing.pytest_plugin`` offers it as fixtures.
"""

from __future__ import annotations

from specc.testing.apiserver import ApiServer, serve
from specc.testing.faults import FaultRule, Faults, RequestLog, RequestRecord

__all__ = ["ApiServer", "FaultRule", "Faults", "RequestLog", "RequestRecord", "serve"]
