"""MonitoringStack: rule checks at validation, prometheus-operator CRs, the CRD check."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from specc.check import CrdSchemas, check_objects
from specc.cli import cli
from specc.compile import compile_fleet, fleet_crd_sources, fleet_crds
from specc.compile.monitoring import operator_crds, retention_size
from specc.objects import ClusterRender
from specc.pipeline import compile_checked
from tests.helpers import FLEET, edit, line_of, valid, write

STACK = "apps/storefront/monitoring.yaml"


def renders(root: Path) -> dict[str, ClusterRender]:
    return {r.cluster: r for r in compile_fleet(valid(root))}


def obj(render: ClusterRender, kind: str, name: str) -> dict[str, Any]:
    hits = [o.body for o in render.objects if o.kind == kind and o.name == name]
    assert len(hits) == 1, f"{kind}/{name}: {len(hits)} objects on {render.cluster}"
    return hits[0]


def kinds(render: ClusterRender, group: str = "monitoring.coreos.com") -> list[str]:
    return sorted(f"{o.kind}/{o.name}" for o in render.objects if o.key.group == group)


# --- rendering -------------------------------------------------------------------------


def test_the_example_stack_renders_the_operator_resources_on_prod() -> None:
    prod = renders(FLEET)["prod-eu"]
    assert kinds(prod) == [
        "Alertmanager/monitoring",
        "AlertmanagerConfig/monitoring",
        "Prometheus/monitoring",
        "PrometheusRule/monitoring",
        "ServiceMonitor/monitoring-apps",
    ]
    prom = obj(prod, "Prometheus", "monitoring")["spec"]
    assert prom["replicas"] == 2
    assert prom["retention"] == "15d"
    claim = prom["storage"]["volumeClaimTemplate"]["spec"]
    assert claim["resources"] == {"requests": {"storage": "50Gi"}}
    # 85% of the volume: the rest is room for the WAL and compaction.
    assert prom["retentionSize"] == "43520MiB"
    assert prom["resources"] == {
        "limits": {"memory": "4Gi"},
        "requests": {"cpu": "500m", "memory": "4Gi"},
    }
    assert prom["serviceAccountName"] == "monitoring-prometheus"
    own = {"matchLabels": {"specc.dev/monitoring-stack": "monitoring"}}
    assert prom["serviceMonitorSelector"] == prom["podMonitorSelector"] == own
    assert prom["ruleSelector"] == own
    assert prom["externalLabels"] == {"cluster": "prod-eu", "team": "storefront"}
    assert prom["alerting"]["alertmanagers"] == [
        {
            "apiVersion": "v2",
            "name": "monitoring-alertmanager",
            "namespace": "storefront",
            "port": "web",
        }
    ]
    am = obj(prod, "Alertmanager", "monitoring")["spec"]
    assert am["replicas"] == 3
    assert am["alertmanagerConfiguration"] == {"name": "monitoring"}
    svc = obj(prod, "Service", "monitoring-alertmanager")["spec"]
    assert svc["selector"] == {
        "alertmanager": "monitoring",
        "app.kubernetes.io/name": "alertmanager",
    }
    # Monitors and rules carry the label their Prometheus selects them by.
    for kind, name in (("PrometheusRule", "monitoring"), ("ServiceMonitor", "monitoring-apps")):
        labels = obj(prod, kind, name)["metadata"]["labels"]
        assert labels["specc.dev/monitoring-stack"] == "monitoring"


def test_both_ha_components_get_a_disruption_budget_selecting_their_pods() -> None:
    prod = renders(FLEET)["prod-eu"]
    assert obj(prod, "PodDisruptionBudget", "monitoring-prometheus")["spec"] == {
        "maxUnavailable": 1,
        "selector": {
            "matchLabels": {"app.kubernetes.io/name": "prometheus", "prometheus": "monitoring"}
        },
    }
    assert obj(prod, "PodDisruptionBudget", "monitoring-alertmanager")["spec"] == {
        "maxUnavailable": 1,
        "selector": {
            "matchLabels": {"alertmanager": "monitoring", "app.kubernetes.io/name": "alertmanager"}
        },
    }


def test_single_replicas_in_staging_get_no_disruption_budget() -> None:
    staging = renders(FLEET)["staging"]
    assert obj(staging, "Prometheus", "monitoring")["spec"]["replicas"] == 1
    assert obj(staging, "Prometheus", "monitoring")["spec"]["retentionSize"] == "8704MiB"
    assert obj(staging, "Alertmanager", "monitoring")["spec"]["replicas"] == 1
    pdbs = [o.name for o in staging.objects if o.kind == "PodDisruptionBudget"]
    assert not [n for n in pdbs if n.startswith("monitoring-")]


def test_the_stack_is_not_placed_on_dev() -> None:
    assert kinds(renders(FLEET)["dev"]) == []


def test_the_app_service_monitor_scrapes_the_ports_marked_metrics_on_the_teams_services() -> None:
    prod = renders(FLEET)["prod-eu"]
    monitor = obj(prod, "ServiceMonitor", "monitoring-apps")["spec"]
    assert monitor["selector"] == {
        "matchExpressions": [
            {"key": "app.kubernetes.io/name", "operator": "In", "values": ["web"]}
        ],
        "matchLabels": {"app.kubernetes.io/part-of": "storefront"},
    }
    assert monitor["endpoints"] == [{"path": "/metrics", "port": "metrics"}]
    # The endpoint names a port the selected Service really has.
    web = obj(prod, "Service", "web")
    assert web["metadata"]["labels"]["app.kubernetes.io/part-of"] == "storefront"
    assert "metrics" in [p["name"] for p in web["spec"]["ports"]]


def test_stateful_members_are_scraped_once_not_also_through_the_headless_service(
    fleet: Path,
) -> None:
    edit(
        fleet,
        "apps/payments/ledger-db.yaml",
        "      port: 5432\n",
        "      port: 5432\n    - name: metrics\n      port: 9187\n      metrics: true\n",
    )
    write(
        fleet,
        "apps/payments/monitoring.yaml",
        "apiVersion: specc.dev/v1alpha1\nkind: MonitoringStack\n"
        "metadata: {name: observability, team: payments}\n"
        "spec:\n  prometheus: {storage: {size: 100Gi}}\n"
        "placement: {environments: [prod]}\n",
    )
    prod = renders(fleet)["prod-eu"]
    monitor = obj(prod, "ServiceMonitor", "observability-apps")["spec"]
    assert monitor["selector"]["matchExpressions"][0]["values"] == ["ledger-db"]
    assert monitor["endpoints"] == [
        {
            "path": "/metrics",
            "port": "metrics",
            "relabelings": [
                {
                    "action": "drop",
                    "regex": "ledger-db-headless",
                    "sourceLabels": ["__meta_kubernetes_service_name"],
                }
            ],
        }
    ]
    assert obj(prod, "Prometheus", "observability")["spec"]["retentionSize"] == "85GiB"
    assert obj(prod, "Alertmanager", "observability")["spec"]["replicas"] == 3  # the default
    # No receivers, no rules: nothing to render for them.
    assert "AlertmanagerConfig/observability" not in kinds(prod)
    assert "PrometheusRule/observability" not in kinds(prod)


def test_explicit_scrape_targets_become_service_and_pod_monitors(fleet: Path) -> None:
    edit(
        fleet,
        STACK,
        "    appPorts: true\n",
        "    appPorts: false\n"
        "    services:\n      - {name: edge, selector: {app: edge-proxy}, port: admin, interval: 15s}\n"
        "    pods:\n      - {name: jobs, selector: {component: worker}, port: metrics, path: /stats}\n",
    )
    prod = renders(fleet)["prod-eu"]
    assert "ServiceMonitor/monitoring-apps" not in kinds(prod)
    assert obj(prod, "ServiceMonitor", "monitoring-edge")["spec"] == {
        "endpoints": [{"interval": "15s", "path": "/metrics", "port": "admin"}],
        "selector": {"matchLabels": {"app": "edge-proxy"}},
    }
    assert obj(prod, "PodMonitor", "monitoring-jobs")["spec"] == {
        "podMetricsEndpoints": [{"path": "/stats", "port": "metrics"}],
        "selector": {"matchLabels": {"component": "worker"}},
    }


def test_receivers_refer_to_secret_keys_and_route_by_labels() -> None:
    prod = renders(FLEET)["prod-eu"]
    config = obj(prod, "AlertmanagerConfig", "monitoring")["spec"]
    assert config["route"] == {
        "groupBy": ["alertname", "namespace"],
        "receiver": "team-chat",
        "routes": [
            {
                "matchers": [{"matchType": "=", "name": "severity", "value": "critical"}],
                "receiver": "oncall",
            }
        ],
    }
    assert config["receivers"][1] == {
        "name": "oncall",
        "pagerdutyConfigs": [
            {
                "routingKey": {"key": "pagerduty-routing-key", "name": "storefront-alerting"},
                "sendResolved": True,
            }
        ],
    }
    assert "storefront-alerting" not in json.dumps(
        [o.body for o in prod.objects if o.kind == "Secret"]
    )


def test_rules_render_as_written() -> None:
    prod = renders(FLEET)["prod-eu"]
    groups = obj(prod, "PrometheusRule", "monitoring")["spec"]["groups"]
    assert [g["name"] for g in groups] == ["storefront-web"]
    first = groups[0]["rules"][0]
    assert first["alert"] == "StorefrontHighErrorRate"
    assert first["for"] == "10m" and first["labels"] == {"severity": "critical"}
    assert first["expr"].startswith("sum by (namespace, service)") and not first["expr"].endswith(
        "\n"
    )


@pytest.mark.parametrize(
    ("volume", "expected"),
    [
        ("50Gi", "43520MiB"),
        ("100Gi", "85GiB"),
        ("20Gi", "17GiB"),
        ("1Gi", "870MiB"),
        ("2Ti", "1782579MiB"),
    ],
)
def test_retention_size_leaves_fifteen_percent_of_the_volume(volume: str, expected: str) -> None:
    assert retention_size(volume) == expected


# --- the CRD check ---------------------------------------------------------------------


def test_rendered_custom_resources_pass_the_shipped_crd_schemas() -> None:
    fleet = valid(FLEET)
    assert compile_checked(fleet)  # raises CheckError on any violation


def test_the_crd_check_does_catch_a_field_the_operator_would_drop() -> None:
    fleet = valid(FLEET)
    prod = next(r for r in compile_fleet(fleet) if r.cluster == "prod-eu")
    crds = CrdSchemas.from_documents(fleet_crd_sources(fleet))
    objects = [copy.deepcopy(o) for o in prod.objects if o.kind in ("Prometheus", "ServiceMonitor")]
    objects[0].body["spec"]["retentionSise"] = "1GiB"
    objects[1].body["spec"]["endpoints"][0]["port"] = 9090
    problems = [str(f) for f in check_objects(objects, prod.kubernetes_version, crds)]
    assert len(problems) == 2, problems
    assert any("Prometheus/storefront/monitoring" in p and "retentionSise" in p for p in problems)
    assert any("ServiceMonitor/storefront/monitoring-apps" in p and "port" in p for p in problems)


def test_the_operator_crds_are_known_to_every_fleet_without_being_read(
    fleet: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from specc.check import store
    from specc.compile import monitoring

    monkeypatch.setenv("SPECC_CACHE_DIR", str(tmp_path / "store"))
    store.cache_dir.cache_clear()

    names = sorted(c["metadata"]["name"] for c in operator_crds())
    assert names == [
        "alertmanagerconfigs.monitoring.coreos.com",
        "alertmanagers.monitoring.coreos.com",
        "podmonitors.monitoring.coreos.com",
        "prometheuses.monitoring.coreos.com",
        "prometheusrules.monitoring.coreos.com",
        "servicemonitors.monitoring.coreos.com",
    ]
    (fleet / STACK).unlink()
    monitoring._load_crd_cached.cache_clear()
    assert set(names) <= {c["metadata"]["name"] for c in fleet_crds(valid(fleet))}
    compile_checked(valid(fleet))
    # No resource of their kinds: no schema was read.
    assert monitoring._load_crd_cached.cache_info().currsize == 0
    compile_checked(valid(FLEET))
    read = monitoring._load_crd_cached.cache_info().currsize
    assert 0 < read <= len(names)
    # Their converted schemas are stored: the next run reads no CRD at all.
    monitoring._load_crd_cached.cache_clear()
    compile_checked(valid(FLEET))
    assert monitoring._load_crd_cached.cache_info().currsize == 0
    store.cache_dir.cache_clear()


# --- rule checks through `specc validate` ------------------------------------------------


def validate(root: Path) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["validate", str(root)])
    return result.exit_code, result.stdout + result.stderr


#: (text in monitoring.yaml, its replacement, text on the line the error points at,
#:  words the message must hold)
BROKEN_RULES = [
    pytest.param(
        'expr: up{job="web"} == 0',
        'expr: (up{job="web"} == 0',
        'expr: (up{job="web"} == 0',
        "unclosed left parenthesis",
        id="unbalanced-parenthesis",
    ),
    pytest.param(
        'expr: up{job="web"} == 0',
        'expr: summ(up{job="web"}) == 0',
        "expr: summ(",
        'unknown function with name "summ"',
        id="unknown-function",
    ),
    pytest.param(
        '(rate(process_cpu_seconds_total{job="web"}[5m]))',
        '(rate(process_cpu_seconds_total{job="web"}[5mm]))',
        "[5mm]",
        "5mm",
        id="bad-range-duration",
    ),
    pytest.param(
        "for: 15m",
        "for: 15 minutes",
        "for: 15 minutes",
        "is not a Prometheus duration",
        id="bad-for-duration",
    ),
    pytest.param(
        'expr: up{job="web"} == 0',
        'expr: up{job=~"web("} == 0',
        'job=~"web("',
        "error parsing regexp: missing closing ): `web(`",
        id="bad-regex-matcher",
    ),
    pytest.param(
        'expr: up{job="web"} == 0',
        'expr: sum(up{job="web"}) by (instance) by (job) == 0',
        "by (job)",
        "unexpected <by>",
        id="grouping-twice",
    ),
    pytest.param(
        "      - name: storefront-web\n",
        "      - name: storefront-web\n        rules:\n          - {alert: Spare, expr: vector(1), labels: {severity: info}}\n      - name: storefront-web\n",
        "- name: storefront-web\n",
        "rule group 'storefront-web' is already defined",
        id="duplicate-group",
    ),
    pytest.param(
        "            labels: {severity: critical}\n",
        "            labels: {team: storefront}\n",
        "labels: {team: storefront}",
        "lacks the required label(s) severity",
        id="missing-severity",
    ),
    pytest.param(
        'description: "{{ $labels.pod }} has used',
        'description: "{{ $labels.pod has used',
        "{{ $labels.pod has used",
        "annotation 'description': template: function \"has\" not defined",
        id="broken-annotation-template",
    ),
]


@pytest.mark.parametrize(("old", "new", "on_line", "words"), BROKEN_RULES)
def test_a_broken_rule_fails_validate_at_its_line(
    fleet: Path, old: str, new: str, on_line: str, words: str
) -> None:
    edit(fleet, STACK, old, new)
    code, out = validate(fleet)
    assert code == 1, out
    text = (fleet / STACK).read_text(encoding="utf-8")
    # The error's line: the one holding `on_line` (its first line if it spans several;
    # the last occurrence, for duplicates).
    line = text[: text.rindex(on_line)].count("\n") + 1
    errors = [ln for ln in out.splitlines() if ": error: " in ln]
    assert len(errors) == 1, out
    assert f"{STACK}:{line}:" in errors[0], (line, out)
    assert words in errors[0], out


def test_an_error_inside_a_multi_line_expression_is_reported_at_its_own_line_and_column(
    fleet: Path,
) -> None:
    # The third line of the block scalar holds the typo.
    edit(
        fleet,
        STACK,
        '(rate(http_requests_total{job="web"}[5m]))',
        '(rat(http_requests_total{job="web"}[5m]))',
    )
    code, out = validate(fleet)
    assert code == 1
    line = line_of(fleet, STACK, "(rat(")
    column = (fleet / STACK).read_text(encoding="utf-8").splitlines()[line - 1].index("rat(") + 1
    assert line > line_of(fleet, STACK, "expr: |")
    assert (
        f"{STACK}:{line}:{column}: error: spec.rules.groups[0].rules[0].expr: PromQL: "
        'unknown function with name "rat"'
    ) in out


def test_an_unclosed_multi_line_expression_is_reported_at_its_end(fleet: Path) -> None:
    edit(fleet, STACK, 'code=~"5.."}[5m]))', 'code=~"5.."}[5m])')
    code, out = validate(fleet)
    assert code == 1
    line = line_of(fleet, STACK, "> 0.05")
    assert f"{STACK}:{line}:" in out and "unclosed left parenthesis" in out


def test_a_broken_rule_in_an_environment_override_fails_too(fleet: Path) -> None:
    edit(
        fleet,
        STACK,
        "      alertmanager: {replicas: 1}\n",
        "      alertmanager: {replicas: 1}\n"
        "      rules: {groups: [{name: extra, rules: [{alert: X, expr: 'sum(', labels: {severity: info}}]}]}\n",
    )
    code, out = validate(fleet)
    assert code == 1
    assert f"{STACK}:{line_of(fleet, STACK, 'name: extra')}:" in out
    assert "unexpected end of input" in out or "unclosed" in out


def test_receivers_name_a_secret_and_must_be_one_kind(fleet: Path) -> None:
    edit(
        fleet,
        STACK,
        '          channel: "#storefront-alerts"\n',
        '          channel: "#storefront-alerts"\n'
        "        webhook:\n          url: {secret: storefront-alerting, key: hook}\n",
    )
    code, out = validate(fleet)
    assert code == 1
    line = line_of(fleet, STACK, "- name: team-chat")
    assert f"{STACK}:{line}:" in out
    assert "set exactly one of slack, pagerduty and webhook (got slack, webhook)" in out


def test_the_default_receiver_must_be_defined(fleet: Path) -> None:
    edit(fleet, STACK, "defaultReceiver: team-chat", "defaultReceiver: team-chats")
    code, out = validate(fleet)
    assert code == 1
    assert f"{STACK}:{line_of(fleet, STACK, 'defaultReceiver')}:" in out
    assert "no receiver named 'team-chats' (team-chat, oncall)" in out


# --- specc diff ------------------------------------------------------------------------


def _git(repo: Path, *args: str) -> None:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@specc.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@specc.invalid",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, env=env)


def test_the_stack_shows_in_specc_diff_like_any_app(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(FLEET, repo / "fleet")
    (repo / "fleet" / STACK).unlink()
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "--no-gpg-sign", "-m", "without the stack")
    shutil.copy(FLEET / STACK, repo / "fleet" / STACK)
    result = CliRunner().invoke(
        cli, ["diff", str(repo / "fleet"), "--base", "HEAD", "-o", "json"], catch_exceptions=False
    )
    assert result.exit_code == 1, result.stdout
    data = json.loads(result.stdout)
    prod = next(c for c in data["clusters"] if c["cluster"] == "prod-eu")
    added = [e["object"] for e in prod["added"]]
    for ref in (
        "Prometheus/storefront/monitoring",
        "Alertmanager/storefront/monitoring",
        "PrometheusRule/storefront/monitoring",
        "ServiceMonitor/storefront/monitoring-apps",
        "PodDisruptionBudget/storefront/monitoring-prometheus",
    ):
        assert ref in added, added
    dev = next(c for c in data["clusters"] if c["cluster"] == "dev")
    assert dev["status"] == "unchanged"
