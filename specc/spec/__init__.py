"""Typed fleet specs (pydantic models), one module per group of kinds."""

from __future__ import annotations

from pydantic import BaseModel

from specc.spec import prebuilt
from specc.spec.apps import App, CustomResource, Manifests, Service, StatefulService
from specc.spec.base import API_VERSION, MODELS
from specc.spec.fleet import Cluster, Environment, Fleet
from specc.spec.monitoring import MonitoringStack
from specc.spec.team import Team

prebuilt.install(MODELS)

#: Every kind a fleet document may have, by its ``kind`` field.
KINDS: dict[str, type[BaseModel]] = {
    "Fleet": Fleet,
    "Team": Team,
    "Service": Service,
    "StatefulService": StatefulService,
    "CustomResource": CustomResource,
    "Manifests": Manifests,
    "MonitoringStack": MonitoringStack,
}

#: Kinds that may stand in apps/.
APP_KINDS = ("Service", "StatefulService", "CustomResource", "Manifests", "MonitoringStack")

__all__ = [
    "API_VERSION",
    "APP_KINDS",
    "KINDS",
    "App",
    "Cluster",
    "CustomResource",
    "Environment",
    "Fleet",
    "Manifests",
    "MonitoringStack",
    "Service",
    "StatefulService",
    "Team",
]
