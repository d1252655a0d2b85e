"""Workloads that would never become ready: probes on undeclared ports, and requests ×
maximum replicas beyond the team's quota."""

from __future__ import annotations

from pathlib import Path

import pytest

from specc.errors import CheckError, ValidationError
from specc.pipeline import render_path
from tests.render_helpers import write_fleet

SERVICE = """\
apiVersion: specc.dev/v1alpha1
kind: Service
metadata: {{name: web, team: team-a}}
spec:
  image: x/web:1
  ports:
    - {{name: http, port: 80, targetPort: 8080}}
  probes:
    readiness: {{path: /healthz, port: {port}}}
"""


@pytest.mark.parametrize(
    ("port", "message"),
    [
        ("htp", "readiness probe port 'htp' is not a declared port (ports: http)"),
        (
            "8081",
            "readiness probe port 8081 is not a container port the spec declares; name the port (e.g. port: http)",
        ),
        (
            "80",
            "readiness probe port 80 is not a container port the spec declares: 80 is the Service port of 'http'; the container listens on 8080; name the port (e.g. port: http)",
        ),
    ],
)
def test_a_probe_on_a_port_the_spec_does_not_declare_is_an_error(
    tmp_path: Path, port: str, message: str
) -> None:
    """Seen: a readiness probe on a named port that does not exist (port: htp) passed."""
    root = write_fleet(tmp_path, {"apps/web.yaml": SERVICE.format(port=port)})
    with pytest.raises(ValidationError) as exc:
        render_path(root)
    (finding,) = exc.value.findings
    assert str(finding) == f"apps/web.yaml:9:39: spec.probes.readiness.port: {message}"


@pytest.mark.parametrize("port", ["http", "8080"])
def test_a_probe_on_a_declared_port_by_name_or_container_number_passes(
    tmp_path: Path, port: str
) -> None:
    root = write_fleet(tmp_path, {"apps/web.yaml": SERVICE.format(port=port)})
    render_path(root)


TEAM_WITH_QUOTA = """\
apiVersion: specc.dev/v1alpha1
kind: Team
metadata: {name: team-a}
spec:
  quota: {cpu: "16", memory: 64Gi, pods: 20}
  limits:
    defaultRequest: {cpu: 500m, memory: 256Mi}
"""

DB = """\
apiVersion: specc.dev/v1alpha1
kind: StatefulService
metadata: {name: db, team: team-a}
spec:
  image: x/db:1
  members: 3
  storage: {size: 1Gi}
  resources:
    requests: {cpu: "8", memory: 8Gi}
"""


def test_one_workload_beyond_the_quota_at_its_maximum_is_an_error(tmp_path: Path) -> None:
    """Seen: 3 members × 8 CPU in a team whose quota is 16 CPU passed."""
    root = write_fleet(tmp_path, {"teams/team-a.yaml": TEAM_WITH_QUOTA, "apps/db.yaml": DB})
    with pytest.raises(CheckError) as exc:
        render_path(root, ["dev"])
    (finding,) = exc.value.findings
    assert str(finding) == (
        "apps/db.yaml:8:3: StatefulSet/team-a/db: 3 pods need requests.cpu 24 at most, beyond "
        "ResourceQuota/team-a/team-quota (requests.cpu: 16): the quota refuses the last pods, "
        "so this workload never runs as declared"
    )


def test_workloads_beyond_the_quota_together_only_at_their_maximum_are_a_warning(
    tmp_path: Path,
) -> None:
    root = write_fleet(
        tmp_path,
        {
            "teams/team-a.yaml": TEAM_WITH_QUOTA,
            "apps/db.yaml": DB.replace("members: 3", "members: 1"),
            # No requests: the LimitRange's 500m each, 20 pods at most under the autoscaler.
            "apps/web.yaml": """\
            apiVersion: specc.dev/v1alpha1
            kind: Service
            metadata: {name: web, team: team-a}
            spec:
              image: x/web:1
              autoscaling: {minReplicas: 2, maxReplicas: 18}
            """,
        },
    )
    fleet, _ = render_path(root, ["dev"])
    (warning,) = [w for w in fleet.warnings if "quota" in w.message]
    assert warning.severity == "warning"
    assert warning.subject == "ResourceQuota/team-a/team-quota"
    assert (
        "workloads at their maximum replicas need requests.cpu 17, beyond its quota"
        in warning.message
    )
