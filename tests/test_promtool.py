"""specc and promtool agree on every expression and template of tests/rules/.

The recorded verdicts (tests/rules/promtool-verdicts.json) make the comparison run
everywhere; with a Prometheus 3 promtool at hand (SPECC_PROMTOOL) the recording itself
is checked against it.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from specc.cli import cli
from tests import promtool


def _promtool_words(kind: str, message: str) -> str:
    # promtool prefixes the position (PromQL) or the template's name and line.
    if kind == "promql":
        return re.sub(r"^\d+:\d+: parse error: ", "", message)
    return re.sub(r"^__alert_T\d+:\d+: ", "", message)


def _specc_words(kind: str, message: str) -> str:
    if kind == "promql":
        return message.removeprefix("PromQL: ")
    return message.removeprefix("annotation 't': template: ")


def test_the_corpus_is_large_and_mixed() -> None:
    recorded = promtool.recorded()
    for kind, least in (("promql", 400), ("templates", 100)):
        verdicts = recorded[kind]
        assert isinstance(verdicts, dict)
        assert len(verdicts) >= least
        refused = sum(v is not None for v in verdicts.values())
        assert 0.2 < refused / len(verdicts) < 0.8, (kind, refused)
        assert sorted(verdicts) == sorted(promtool.cases(kind))


def test_specc_accepts_and_refuses_what_promtool_does_in_its_words() -> None:
    recorded = promtool.recorded()
    promql, templates, _ = promtool.specc_verdicts()
    for kind, mine in (("promql", promql), ("templates", templates)):
        theirs = recorded[kind]
        assert isinstance(theirs, dict)
        disagree = {
            k: (theirs[k], mine[k]) for k in theirs if (theirs[k] is None) != (mine[k] is None)
        }
        assert disagree == {}
        words = {
            k: (_promtool_words(kind, theirs[k]), _specc_words(kind, mine[k] or ""))
            for k in theirs
            if theirs[k] is not None
        }
        assert {k: w for k, w in words.items() if w[0] != w[1]} == {}


def test_every_promql_error_is_located_inside_its_expression(tmp_path: Path) -> None:
    """Through `specc validate`: each refused expression, as a block scalar, is reported
    at a line of that block and a column on that line."""
    _, _, offsets = promtool.specc_verdicts()
    refused = [e for e in promtool.cases("promql") if e in offsets]
    root = tmp_path / "fleet"
    shutil.copytree(Path(__file__).resolve().parent / "corpus" / "_base", root)
    spans: dict[int, tuple[int, int]] = {}
    # 40 rules per document keeps each under the per-document cap on reported problems.
    for doc, start in enumerate(range(0, len(refused), 40)):
        lines = [
            "apiVersion: specc.dev/v1alpha1",
            "kind: MonitoringStack",
            f"metadata: {{name: m{doc}, team: alpha}}",
            "spec:",
            "  prometheus: {storage: {size: 1Gi}}",
            "  rules:",
            "    groups:",
            "      - name: g",
            "        rules:",
        ]
        for i, expr in enumerate(refused[start : start + 40], start):
            lines += [f"          - record: case:{i}", "            expr: |-"]
            first = len(lines) + 1
            lines += ["              " + part for part in expr.split("\n")]
            spans[i] = (first, len(lines))
        (root / f"apps/alpha/m{doc}.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["validate", str(root), "-o", "json"])
    errors = json.loads(result.stdout)["errors"]
    found: dict[int, tuple[int, int]] = {}
    for e in errors:
        m = re.search(r"rules\[(\d+)\]\.expr$", e["field"])
        assert m, e
        doc = int(Path(e["file"]).stem[1:])
        found[doc * 40 + int(m.group(1))] = (e["line"], e["column"])
    assert sorted(found) == list(range(len(refused)))
    text = {
        p.name: p.read_text(encoding="utf-8").splitlines()
        for p in (root / "apps/alpha").glob("m*.yaml")
    }
    for i, (line, column) in found.items():
        first, last = spans[i]
        assert first <= line <= last, (refused[i], line, spans[i])
        source_line = text[f"m{i // 40}.yaml"][line - 1]
        assert 15 <= column <= len(source_line) + 1, (refused[i], line, column)


def test_the_recording_is_what_promtool_says_today() -> None:
    tool, why = promtool.find_promtool()
    if tool is None:
        pytest.skip(why)
    promql, templates = promtool.promtool_verdicts(tool)
    recorded = promtool.recorded()
    assert promql == recorded["promql"]
    assert templates == recorded["templates"]
