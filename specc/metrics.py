"""Prometheus metrics of the agent, in a registry of its own (so tests can read them)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info


@dataclass
class AgentMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.sync_duration = Histogram(
            "specc_sync_duration_seconds",
            "Time one sync (plan, apply, prune) took.",
            ["cluster"],
            registry=r,
            buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
        )
        self.objects = Counter(
            "specc_objects_total",
            "Objects by sync result (created, configured, pruned, ...).",
            ["cluster", "result"],
            registry=r,
        )
        self.drifted = Gauge(
            "specc_objects_drifted",
            "Objects whose live state drifted at the last plan.",
            ["cluster"],
            registry=r,
        )
        self.last_success = Gauge(
            "specc_last_successful_sync_timestamp_seconds",
            "Unix time of the last sync that converged.",
            ["cluster"],
            registry=r,
        )
        self.revision = Info(
            "specc_applied_revision",
            "The commit the cluster was last synced to.",
            ["cluster"],
            registry=r,
        )
        self.errors = Counter(
            "specc_errors_total",
            "Failures by kind: fetch, rewind, signature, validate, sync, leader.",
            ["cluster", "kind"],
            registry=r,
        )
        self.leader = Gauge(
            "specc_leader", "1 while this replica holds the lease.", ["cluster"], registry=r
        )
