"""Kept rule passes (specc.rulecheck): with them, every PromQL expression and alert
template gets the parser's own verdict, and a warm start whose rules all passed before
imports no parser."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from specc import rulecheck
from specc.gotemplate import check_template
from specc.promql import check
from tests.helpers import FLEET, edit
from tests.promtool import cases

MONITORING = "apps/storefront/monitoring.yaml"


def _verdicts(texts: list[str], problem: Any) -> list[tuple[str, int] | None]:
    out = []
    for text in texts:
        found = problem(text)
        out.append(None if found is None else (found.message, found.pos))
    return out


@pytest.mark.parametrize(
    ("name", "kept", "parser"),
    [
        ("promql", rulecheck.promql_problem, check),
        ("templates", rulecheck.template_problem, check_template),
    ],
)
def test_kept_passes_give_the_parsers_verdicts(
    name: str, kept: Any, parser: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    texts = cases(name)
    expected = _verdicts(texts, parser)
    assert None in expected and any(expected), "the cases hold passes and problems"
    monkeypatch.setenv("SPECC_CACHE_DIR", str(tmp_path))
    cold, warm = _verdicts(texts, kept), _verdicts(texts, kept)
    assert cold == warm == expected
    # One kept pass per distinct text that passed (text without "{{" is no template).
    passes = [p for p in (tmp_path / "rules").rglob("*") if p.is_file()]
    checked = {t for t, v in zip(texts, expected, strict=True) if v is None}
    assert len(passes) == len(checked if name == "promql" else {t for t in checked if "{{" in t})
    monkeypatch.setenv("SPECC_CACHE_DIR", "off")
    assert _verdicts(texts, kept) == expected


def test_a_pass_is_kept_per_check_and_per_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPECC_CACHE_DIR", str(tmp_path))
    text = 'up{job="{{"} == 1'
    assert rulecheck.promql_problem(text) is None
    # Valid PromQL is not therefore a valid template, nor is a text one character away.
    template = _verdicts([text], rulecheck.template_problem)
    assert template == _verdicts([text], check_template) != [None]
    one_away = _verdicts([text + ")"], rulecheck.promql_problem)
    assert one_away == _verdicts([text + ")"], check) != [None]


_PROBE = r"""
import atexit, json, sys
from specc.cli import main
atexit.register(lambda: print(json.dumps(
    {"parsers": sorted(m for m in ("specc.promql", "specc.gotemplate", "re2") if m in sys.modules)}
)))
sys.argv = ["specc", "validate", sys.argv[1]]
main()
"""


def _probe(fleet: Path, store: Path) -> tuple[int, list[str], str]:
    run = subprocess.run(
        [sys.executable, "-c", _PROBE, str(fleet)],
        capture_output=True,
        text=True,
        env={**os.environ, "SPECC_CACHE_DIR": str(store), "GITHUB_ACTIONS": "false"},
        check=False,
    )
    parsers: list[str] = json.loads(run.stdout.strip().splitlines()[-1])["parsers"]
    return run.returncode, parsers, run.stdout + run.stderr


def test_a_warm_start_imports_no_parser(tmp_path: Path, fleet: Path) -> None:
    store = tmp_path / "store"
    code, parsers, out = _probe(FLEET, store)
    assert (code, parsers) == (0, ["re2", "specc.gotemplate", "specc.promql"]), out
    code, parsers, out = _probe(FLEET, store)
    assert (code, parsers) == (0, []), out
    # One expression broken: the parser runs and its error is reported where it is.
    edit(fleet, MONITORING, 'expr: up{job="web"} == 0', 'expr: up{job="web"} == 0)')
    code, parsers, out = _probe(fleet, store)
    assert code == 1 and "specc.promql" in parsers, out
    assert f"{fleet / MONITORING}:" in out and "PromQL: " in out
