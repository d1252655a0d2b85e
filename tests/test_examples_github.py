"""The workflows a fleet repository copies, and the pre-commit hook: shape and safety."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from specc.diffreport import MARKER

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((ROOT / "examples/github").glob("*.yml"))


def test_both_workflows_exist() -> None:
    assert [p.name for p in WORKFLOWS] == ["specc-pr.yml", "specc-sync.yml"]


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_actions_are_pinned_by_full_commit_sha(path: Path) -> None:
    uses = re.findall(r"uses:\s*(\S+)", path.read_text(encoding="utf-8"))
    assert uses
    for ref in uses:
        assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", ref), ref


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_permissions_are_empty_at_the_top_and_granted_per_job(path: Path) -> None:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert doc["permissions"] == {}
    for job in doc["jobs"].values():
        assert "permissions" in job
        assert "timeout-minutes" in job


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_no_expression_is_expanded_inside_a_script(path: Path) -> None:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    for job in doc["jobs"].values():
        for step in job["steps"]:
            assert "${{" not in step.get("run", ""), step.get("name")
            assert "${{" not in (step.get("with") or {}).get("script", ""), step.get("name")


def test_the_pr_workflow_updates_the_comment_that_starts_with_the_diff_marker() -> None:
    text = (ROOT / "examples/github/specc-pr.yml").read_text(encoding="utf-8")
    assert f"const marker = '{MARKER}';" in text
    assert "--output markdown" in text


def test_the_pre_commit_hook_runs_specc_validate() -> None:
    (hook,) = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    assert hook["id"] == "specc-validate"
    assert hook["entry"] == "specc validate"
    assert hook["pass_filenames"] is False
