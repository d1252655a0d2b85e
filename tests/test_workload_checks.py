"""Workloads that would never become ready: probes on undeclared ports, and requests ×
maximum replicas beyond the team's quota."""

from __future__ import annotations

from pathlib import Path

import pytest

from specc.errors import ValidationError
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
