"""specc's rule checks side by side with ``promtool check rules`` on the cases of tests/rules/.

``promql.txt`` holds expressions and ``templates.txt`` alert templates, one per line
(``\\n`` for a line break). :func:`promtool_verdicts` puts them all in one rule file
(a recording rule per expression, an alerting rule per template) and reads which rules
promtool refuses and why; :func:`specc_verdicts` asks specc's own models the same.
``promtool-verdicts.json`` records promtool's answers so that the comparison also runs
where no promtool is installed (tools/record_promtool_verdicts.py rewrites it).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pydantic

RULES = Path(__file__).resolve().parent / "rules"
RECORDED = RULES / "promtool-verdicts.json"

Verdicts = dict[str, str | None]


def cases(name: str) -> list[str]:
    """Return the cases of ``tests/rules/<name>.txt`` (comments and blank lines skipped)."""
    out = []
    for line in (RULES / f"{name}.txt").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("# "):
            out.append(line.replace("\\n", "\n"))
    return out


def find_promtool() -> tuple[str | None, str]:
    """Return a Prometheus 3 promtool and its version, or None and why there is none."""
    given = os.environ.get("SPECC_PROMTOOL")
    candidate = given or shutil.which("promtool")
    if not candidate:
        return None, "no promtool (set SPECC_PROMTOOL, or put Prometheus 3's promtool on PATH)"
    out = subprocess.run([candidate, "--version"], capture_output=True, text=True, check=False)
    version = re.search(r"version (\S*)", out.stdout + out.stderr)
    number = version.group(1) if version else ""
    if number.startswith(("0.", "1.", "2.")):
        return None, f"{candidate} is Prometheus {number}, not 3 (set SPECC_PROMTOOL)"
    if not number and not given:
        return None, f"{candidate} does not say its version (set SPECC_PROMTOOL to trust it)"
    return candidate, number or "unversioned build"


def rule_file(expressions: list[str], templates: list[str]) -> str:
    """Return one rule file holding every case; JSON strings are YAML strings."""
    lines = ["groups:", "  - name: promql", "    rules:"]
    for i, expr in enumerate(expressions):
        lines.append(f"      - record: case:{i}")
        lines.append(f"        expr: {json.dumps(expr)}")
    lines += ["  - name: templates", "    rules:"]
    for i, text in enumerate(templates):
        lines.append(f"      - alert: T{i}")
        lines.append("        expr: up == 0")
        lines.append(f"        annotations: {{t: {json.dumps(text)}}}")
    return "\n".join(lines) + "\n"


_PROMQL = re.compile(r'group "promql", rule (\d+), "case:\d+": could not parse expression: (.*)')
_TEMPLATE = re.compile(r'group "templates", rule (\d+), "T\d+": annotation "t": template: (.*)')


def promtool_verdicts(promtool: str) -> tuple[Verdicts, Verdicts]:
    """Return promtool's message (None: accepted) for every expression and template."""
    expressions, templates = cases("promql"), cases("templates")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rules.yaml"
        path.write_text(rule_file(expressions, templates), encoding="utf-8")
        out = subprocess.run(
            [promtool, "check", "rules", str(path)], capture_output=True, text=True, check=False
        )
    text = out.stdout + out.stderr
    promql: Verdicts = dict.fromkeys(expressions)
    tmpl: Verdicts = dict.fromkeys(templates)
    for line in text.splitlines():
        if m := _PROMQL.search(line):
            promql[expressions[int(m.group(1)) - 1]] = m.group(2)
        elif m := _TEMPLATE.search(line):
            tmpl[templates[int(m.group(1)) - 1]] = m.group(2)
    return promql, tmpl


def specc_verdicts() -> tuple[Verdicts, Verdicts, dict[str, int]]:
    """Return specc's message for every case, and the offset of each PromQL error."""
    from specc.spec.monitoring import Rule

    promql: Verdicts = {}
    offsets: dict[str, int] = {}
    for expr in cases("promql"):
        try:
            Rule.model_validate({"record": "case:0", "expr": expr})
            promql[expr] = None
        except pydantic.ValidationError as exc:
            (err,) = exc.errors()
            promql[expr] = err["msg"]
            offsets[expr] = (err.get("ctx") or {}).get("specc_offset", -1)
    tmpl: Verdicts = {}
    for text in cases("templates"):
        try:
            Rule.model_validate({"alert": "T", "expr": "up == 0", "annotations": {"t": text}})
            tmpl[text] = None
        except pydantic.ValidationError as exc:
            tmpl[text] = exc.errors()[0]["msg"]
    return promql, tmpl, offsets


def recorded() -> dict[str, object]:
    data: dict[str, object] = json.loads(RECORDED.read_text(encoding="utf-8"))
    return data


def record(promtool: str, version: str) -> None:
    promql, templates = promtool_verdicts(promtool)
    data = {
        "promtool": f"promtool {version}, Prometheus 3 (github.com/prometheus/prometheus v0.316.0)",
        "regenerate": "python3 tools/record_promtool_verdicts.py (needs SPECC_PROMTOOL)",
        "promql": promql,
        "templates": templates,
    }
    RECORDED.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
