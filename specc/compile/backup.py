"""Renderer of a StatefulService's backup: a CronJob whose pods are nobody's member."""

from __future__ import annotations

from typing import Any

from specc.compile.meta import BACKUP_COMPONENT, COMPONENT_LABEL, AppContext, make
from specc.compile.workload import (
    container_security_context,
    pod_security_context,
    pos,
    resources,
    template_locations,
)
from specc.load import SourceMap
from specc.objects import DesiredObject
from specc.spec.apps import Backup


def render_backup(
    ctx: AppContext,
    backup: Backup,
    server: dict[str, Any],
    source: SourceMap,
) -> DesiredObject:
    """Return the backup CronJob of a stateful service.

    Its pods carry ``app.kubernetes.io/name: <app>-backup`` and ``component: backup``, so
    neither Service routes to them, the PodDisruptionBudget does not count them and the
    members' anti-affinity does not repel them. ``server`` is the members' container:
    with ``inheritEnv`` its literal and secret environment variables are passed on.
    """
    c: dict[str, Any] = {"name": "backup", "image": backup.image, "command": list(backup.command)}
    env: list[dict[str, Any]] = []
    if backup.inherit_env:
        # ConfigMap references are left out: the job has no use for the server's config.
        env += [
            e
            for e in server.get("env", [])
            if "valueFrom" not in e or "secretKeyRef" in e["valueFrom"]
        ]
    env += [{"name": k, "value": v} for k, v in backup.env.items()]
    env += [
        {"name": s.env, "valueFrom": {"secretKeyRef": {"name": s.secret, "key": s.key}}}
        for s in backup.secrets
        if s.env is not None
    ]
    # A later definition of a name wins, as in a pod: the job's own over the inherited.
    by_name = {e["name"]: e for e in env}
    if by_name:
        c["env"] = list(by_name.values())
    res = resources(backup.resources)
    if res:
        c["resources"] = res
    mounts: list[dict[str, Any]] = []
    volumes: list[dict[str, Any]] = []
    for i, s in enumerate(s for s in backup.secrets if s.mount_path is not None):
        mounts.append({"name": f"secret-{i}", "mountPath": s.mount_path, "readOnly": True})
        volumes.append({"name": f"secret-{i}", "secret": {"secretName": s.secret}})
    if mounts:
        c["volumeMounts"] = mounts
    c["securityContext"] = container_security_context(backup.security)
    pod: dict[str, Any] = {
        "containers": [c],
        "restartPolicy": "OnFailure",
        "securityContext": pod_security_context(backup.security),
    }
    if volumes:
        pod["volumes"] = volumes
    cron = {
        "concurrencyPolicy": "Forbid",
        "jobTemplate": {
            "spec": {
                "backoffLimit": 2,
                "template": {
                    "metadata": {"labels": ctx.component_pod_labels(BACKUP_COMPONENT)},
                    "spec": pod,
                },
            }
        },
        "schedule": backup.schedule,
        "successfulJobsHistoryLimit": backup.successful_jobs_history_limit,
        "suspend": backup.suspend,
    }
    obj = make(
        ctx, "batch/v1", "CronJob", f"{ctx.name}-backup", pos(source, "backup"), {"spec": cron}
    )
    obj.locations = template_locations(
        ("spec", "jobTemplate", "spec", "template"), source, ("spec", "backup")
    )
    obj.body["metadata"]["labels"][COMPONENT_LABEL] = BACKUP_COMPONENT
    obj.body["metadata"]["labels"] = dict(sorted(obj.body["metadata"]["labels"].items()))
    return obj
