"""The reconciler: observe the cluster, plan against the commit, apply in waves, prune safely."""

from specc.sync.apply import ObjectResult, SyncOptions, SyncResult, plan_cluster, sync
from specc.sync.cluster import Cluster, ClusterOptions
from specc.sync.plan import Plan, PlanEntry, PlanOptions, plan

__all__ = [
    "Cluster",
    "ClusterOptions",
    "ObjectResult",
    "Plan",
    "PlanEntry",
    "PlanOptions",
    "SyncOptions",
    "SyncResult",
    "plan",
    "plan_cluster",
    "sync",
]
