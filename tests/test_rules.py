"""Rule groups as Prometheus reads them: the rule-file form, templates, PrometheusRule in Manifests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from specc.cli import cli
from specc.compile import compile_fleet
from tests.helpers import edit, line_of, valid, write

STACK = "apps/storefront/monitoring.yaml"
TARGET_DOWN = "          - alert: StorefrontTargetDown\n"


def validate(root: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["validate", str(root), *args])
    return result.exit_code, result.stdout + result.stderr


def add_rules(root: Path, text: str) -> None:
    """Put rules (indented as list items of the first group) before StorefrontTargetDown."""
    edit(root, STACK, TARGET_DOWN, text + TARGET_DOWN)


def prometheus_rule(root: Path) -> dict[str, object]:
    prod = next(r for r in compile_fleet(valid(root)) if r.cluster == "prod-eu")
    (body,) = [o.body for o in prod.objects if o.kind == "PrometheusRule"]
    return body


def test_a_pasted_rule_file_group_with_every_prometheus_field_validates_and_renders(
    fleet: Path,
) -> None:
    edit(
        fleet,
        STACK,
        "    groups:\n",
        "    groups:\n"
        "      - name: pasted\n"
        "        interval: 1m\n"
        "        query_offset: 30s\n"
        "        limit: 100\n"
        "        labels: {team: storefront, severity: info}\n"
        "        rules:\n"
        "          - alert: Foo(bar) is down!\n"
        "            expr: up == 0\n"
        "            for: 5m\n"
        "            keep_firing_for: 10m\n"
        "          - record: job:up:sum\n"
        "            expr: sum by (job) (up)\n"
        "            labels: {source: pasted}\n",
    )
    code, out = validate(fleet)
    assert code == 0, out
    groups = prometheus_rule(fleet)["spec"]["groups"]  # type: ignore[index]
    pasted = next(g for g in groups if g["name"] == "pasted")
    assert pasted["interval"] == "1m" and pasted["query_offset"] == "30s"
    assert pasted["limit"] == 100
    assert pasted["labels"] == {"severity": "info", "team": "storefront"}
    alert, record = pasted["rules"]
    assert alert["alert"] == "Foo(bar) is down!" and alert["keep_firing_for"] == "10m"
    assert record == {
        "expr": "sum by (job) (up)",
        "labels": {"source": "pasted"},
        "record": "job:up:sum",
    }


def test_camel_case_keep_firing_for_is_still_read(fleet: Path) -> None:
    add_rules(
        fleet,
        "          - {alert: Old, expr: up == 0, keepFiringFor: 5m, labels: {severity: info}}\n",
    )
    assert validate(fleet)[0] == 0
    rules = prometheus_rule(fleet)["spec"]["groups"][0]["rules"]  # type: ignore[index]
    assert next(r for r in rules if r.get("alert") == "Old")["keep_firing_for"] == "5m"


def test_two_recording_rules_with_one_name_and_labels_are_a_warning_not_an_error(
    fleet: Path,
) -> None:
    add_rules(
        fleet,
        '          - {record: "code:requests:rate5m", expr: \'sum(rate(requests{code=~"2.."}[5m]))\'}\n'
        '          - {record: "code:requests:rate5m", expr: \'sum(rate(requests{code=~"5.."}[5m]))\'}\n',
    )
    code, out = validate(fleet)
    assert code == 0, out
    line = line_of(fleet, STACK, '{code=~"5.."}')
    assert f"{STACK}:{line}:" in out and ": warning: " in out
    assert "with the same labels is already defined" in out
    code, out = validate(fleet, "--output", "json")
    (warning,) = json.loads(out.splitlines()[-1] if out.startswith("warning") else out)["warnings"]
    assert warning["line"] == line


@pytest.mark.parametrize(
    ("annotation", "column_of", "words"),
    [
        ("{{ $value | humanizee }}", "humanizee", 'function "humanizee" not defined'),
        ("all good {{ end }}", "end }}", "unexpected {{end}}"),
        # The end of the text, where the missing {{ end }} was due.
        ("{{ if gt $value 1.0 }}high", "'", "unexpected EOF"),
        ("on {{ $undefined }}", "$undefined", 'undefined variable "$undefined"'),
        ("{{ $labels.pod | toUpper | nosuch }}", "nosuch", 'function "nosuch" not defined'),
        ("{{ range $i, $e, $x := $labels }}{{ end }}", ", $x", "too many declarations in range"),
    ],
)
def test_an_annotation_template_that_go_cannot_parse_fails_at_its_line_and_column(
    fleet: Path, annotation: str, column_of: str, words: str
) -> None:
    add_rules(
        fleet,
        "          - alert: Templated\n"
        "            expr: up == 0\n"
        "            labels: {severity: info}\n"
        "            annotations:\n"
        f"              summary: '{annotation}'\n",
    )
    code, out = validate(fleet)
    assert code == 1, out
    line = line_of(fleet, STACK, annotation)
    text = (fleet / STACK).read_text(encoding="utf-8").splitlines()[line - 1]
    column = text.rindex(column_of) + 1
    assert f"{STACK}:{line}:{column}: error: " in out, out
    assert f"annotation 'summary': template: {words}" in out


def test_label_templates_are_checked_too(fleet: Path) -> None:
    add_rules(
        fleet,
        "          - alert: Templated\n"
        "            expr: up == 0\n"
        "            labels: {severity: '{{ $labels.severity | lower }}'}\n",
    )
    code, out = validate(fleet)
    assert code == 1
    assert f"{STACK}:{line_of(fleet, STACK, '| lower')}:" in out
    assert "label 'severity': template: function \"lower\" not defined" in out


def test_templates_with_prometheus_functions_and_variables_pass(fleet: Path) -> None:
    add_rules(
        fleet,
        "          - alert: Templated\n"
        "            expr: up == 0\n"
        "            labels: {severity: info, instance: '{{ $labels.instance | stripPort }}'}\n"
        "            annotations:\n"
        "              a: '{{ $value | humanizeDuration }} {{ $externalLabels.cluster }} {{ $externalURL }}'\n"
        "              b: '{{ with query \"up\" }}{{ . | first | value | humanize1024 }}{{ end }}'\n"
        '              c: \'{{ range $k, $v := $labels }}{{ $k | title }}={{ $v | reReplaceAll "a" "b" }}{{ end }}\'\n'
        '              d: \'{{ if and (gt $value 1.0) (ne $labels.job "x") }}{{ printf "%.1f" $value }}{{ else }}-{{ end }}\'\n'
        "              e: '{{- /* a comment */ -}} {{ $value | humanizePercentage | safeHtml }} {{ \"x\" | urlQueryEscape }}'\n"
        '              f: \'{{ define "t" }}x{{ end }}{{ template "t" . }} {{ toTime 0 | humanizeTimestamp }} {{ $ }}\'\n',
    )
    code, out = validate(fleet)
    assert code == 0, out


def test_recording_rules_keep_no_alerting_fields(fleet: Path) -> None:
    add_rules(fleet, "          - {record: 'job:x:sum', expr: sum(x), for: 5m}\n")
    code, out = validate(fleet)
    assert code == 1
    assert "invalid field 'for' in recording rule" in out


@pytest.mark.parametrize(
    "expr",
    [
        r"count(up{job=~`web-\d+`})",
        r'sum(rate(http_requests_total{path=~"\\Q/api/v1.0\\E.*"}[5m]))',
        '{"my.metric", "label.x"="v"}',
        'sum by ("label.x") ({"my.metric"})',
        "up > 1_000",
        "up > 0x1F",
        "time() - 5m > bool 1h",
        "rate(up[5m:30s])",
        "last_over_time(up[1h] offset 5m @ start())",
        "-(-up)",
        "up * on(job) group_left(team) team_info",
    ],
)
def test_promql_that_prometheus_3_accepts_is_accepted(fleet: Path, expr: str) -> None:
    add_rules(fleet, f"          - record: 'x:y:z'\n            expr: '{expr}'\n")
    code, out = validate(fleet)
    assert code == 0, out


def test_an_error_thirty_lines_into_an_expression_points_at_that_line(fleet: Path) -> None:
    lines = [f'                up{{job="j{i}"}} or\n' for i in range(30)]
    add_rules(
        fleet,
        "          - record: long:up\n            expr: |\n"
        + "".join(lines)
        + "                summ(up)\n",
    )
    code, out = validate(fleet)
    assert code == 1
    line = line_of(fleet, STACK, "summ(up)")
    assert f"{STACK}:{line}:17: error: spec.rules.groups[0].rules[2].expr: PromQL: " in out
    assert 'unknown function with name "summ"' in out


MANIFEST_RULE = """\
apiVersion: specc.dev/v1alpha1
kind: Manifests
metadata: {name: upstream-rules, team: storefront}
spec:
  objects:
    - apiVersion: monitoring.coreos.com/v1
      kind: PrometheusRule
      metadata: {name: upstream}
      spec:
        groups:
          - name: upstream
            rules:
              - alert: UpstreamDown
                expr: |
                  absent(up{job="upstream"})
                    == 1
                annotations:
                  summary: '{{ $labels.job }} is down'
"""


def test_prometheus_rule_objects_from_manifests_get_the_same_checks(fleet: Path) -> None:
    write(fleet, "apps/storefront/upstream.yaml", MANIFEST_RULE)
    assert validate(fleet)[0] == 0
    edit(fleet, "apps/storefront/upstream.yaml", "== 1", "=== 1")
    code, out = validate(fleet)
    assert code == 1
    line = line_of(fleet, "apps/storefront/upstream.yaml", "=== 1")
    assert f"apps/storefront/upstream.yaml:{line}:23: error: " in out, out
    assert "spec.objects[0].spec.groups[0].rules[0].expr: PromQL: unexpected" in out
    edit(fleet, "apps/storefront/upstream.yaml", "=== 1", "== 1")
    edit(fleet, "apps/storefront/upstream.yaml", "{{ $labels.job }}", "{{ $labels.job ")
    code, out = validate(fleet)
    assert code == 1
    assert "annotation 'summary': template: function \"is\" not defined" in out
