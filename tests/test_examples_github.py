"""The workflows a fleet repository copies, and the pre-commit hook: shape and safety."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

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


# --- the install step installs this project ----------------------------------------------

DISTRIBUTION = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
    "name"
]


def install_requirement(path: Path) -> tuple[Requirement, dict[str, str]]:
    """Return the requirement the workflow's "Install specc" step installs, with the
    workflow's env expanded, and that env."""
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    env = {k: str(v) for k, v in (doc.get("env") or {}).items()}
    steps = [s for job in doc["jobs"].values() for s in job["steps"] if "run" in s]
    (install,) = [s for s in steps if s.get("name") == "Install specc"]
    command = shlex.split(install["run"])
    assert command[:4] == ["python", "-m", "pip", "install"], install["run"]
    (spec,) = command[4:]
    return Requirement(re.sub(r"\$\{(\w+)\}", lambda m: env[m.group(1)], spec)), env


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_the_install_step_installs_this_project_at_a_pinned_commit(path: Path) -> None:
    req, env = install_requirement(path)
    assert canonicalize_name(req.name) == canonicalize_name(DISTRIBUTION)
    # Not the unrelated `specc` on PyPI, and not whatever a branch holds today.
    assert req.url is not None and req.url.startswith("git+https://"), req
    repository, _, commit = req.url.removeprefix("git+").rpartition("@")
    assert repository == env["SPECC_REPOSITORY"]
    assert re.fullmatch(r"[0-9a-f]{40}", commit), commit


def test_the_sync_workflow_installs_the_cluster_extra() -> None:
    req, _ = install_requirement(ROOT / "examples/github/specc-sync.yml")
    assert req.extras == {"cluster"}
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "optional-dependencies"
    ]
    assert any(d.startswith("kubernetes") for d in extras["cluster"])


@pytest.mark.slow
def test_the_install_step_run_against_this_repository_installs_specc(tmp_path: Path) -> None:
    """The workflow's own command, with the repository and commit pointing here."""
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    head = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    req, _ = install_requirement(ROOT / "examples/github/specc-pr.yml")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    # file://localhost/…: the pip bundled with Python 3.11 refuses a URL without a host.
    spec = f"{req.name} @ git+file://localhost{ROOT}@{head}"
    done = subprocess.run(
        [str(venv / "bin/python"), "-m", "pip", "install", "-q", "--no-deps", spec],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    shown = subprocess.run(
        [str(venv / "bin/python"), "-m", "pip", "show", "-f", DISTRIBUTION],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert f"Name: {DISTRIBUTION}" in shown and "specc/cli.py" in shown
    assert (venv / "bin/specc").is_file()


# --- the workflows pass the linters GitHub users run ---------------------------------------


def _tool(name: str) -> str | None:
    """Return the linter ``name`` from PATH or next to this Python (a CI venv)."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.is_file() else shutil.which(name)


LINTERS = [
    # (tool, arguments before the workflow files), each installable from PyPI or the Go proxy
    ("actionlint", []),
    ("zizmor", ["--offline", "--no-progress"]),
    ("check-jsonschema", ["--builtin-schema", "vendor.github-workflows"]),
]


@pytest.mark.parametrize(("tool", "args"), LINTERS, ids=[t for t, _ in LINTERS])
def test_the_workflows_pass_the_linter(tool: str, args: list[str]) -> None:
    binary = _tool(tool)
    if binary is None:
        pytest.skip(f"{tool} is not installed (.ci/run installs it)")
    done = subprocess.run(
        [binary, *args, *map(str, WORKFLOWS)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
