"""Security: least-privilege RBAC in use, no secret value in any output, HMAC, no shell.

- Every request the sync and the agent make against the double is one the derived
  ClusterRole allows (the role is not only small, it is sufficient).
- A Secret value that lives in the cluster (filled in by another controller) or that a
  commit tries to carry never shows in logs, plan/sync output, status, metrics or diffs.
- The webhook signature is compared in constant time and refuses every near miss.
- No module runs a shell; git gets argument lists, and hostile URLs and branches are
  refused before git sees them.
"""

from __future__ import annotations

import ast
import hashlib
import hmac
import io
import json
import logging
import os
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from specc import agentserver as agent_module
from specc.agentserver import verify_signature
from specc.cli import cli
from specc.compile import fleet_crds
from specc.diff import diff_cluster
from specc.diffreport import Side, diff_json, diff_markdown, diff_text
from specc.errors import GitError, Position
from specc.logs import JsonFormatter
from specc.objects import DesiredObject
from specc.pipeline import render_path
from specc.rbac import agent_cluster_role
from specc.source import GitSource, GitSourceOptions, check_branch, check_url
from specc.sync import Cluster, ClusterOptions, plan_cluster, sync
from specc.sync.apply import read_status
from specc.sync.inventory import ApplySetParent
from specc.testing import ApiServer
from tests.test_agent import CLUSTER, Repo, make_agent

ROOT = Path(__file__).resolve().parent.parent
SPECC = ROOT / "specc"
#: A value nobody would write by accident; no output may contain it (or its base64).
SECRET = "s3cr3t-Value-7f9c2e"
SECRET_B64 = "czNjcjN0LVZhbHVlLTdmOWMyZQ=="


@pytest.fixture(scope="module")
def server() -> Iterator[ApiServer]:
    if os.environ.get("SPECC_TEST_KUBECONFIG"):
        pytest.skip("reads the double's request log")
    with ApiServer() as srv:
        yield srv


@pytest.fixture
def api(server: ApiServer) -> ApiServer:
    server.reset()
    return server


def client(api: ApiServer) -> Cluster:
    return Cluster(api.api_client(), ClusterOptions(backoff=0.001), sleep=lambda _: None)


# -- RBAC: what the agent does is what the role grants ------------------------------------

#: HTTP verbs of the request log → RBAC verbs (server-side apply is a patch, or a create
#: when the object does not exist yet: the role must grant both, and does).
_RBAC_VERBS = {
    "get": "get",
    "list": "list",
    "apply": "patch",
    "patch": "patch",
    "create": "create",
    "update": "update",
    "delete": "delete",
}


def _group_of(path: str) -> str:
    parts = path.strip("/").split("/")
    return parts[1] if parts[0] == "apis" and len(parts) > 1 else ""


def test_every_request_of_a_sync_and_the_agent_is_allowed_by_the_derived_role(
    api: ApiServer, tmp_path: Path
) -> None:
    repo = Repo(tmp_path)
    repo.commit("initial fleet")
    valid, renders = render_path(repo.work / "fleet")
    role = agent_cluster_role(renders, fleet_crds(valid))
    granted = {
        (g, r, v, name)
        for rule in role["rules"]
        for g in rule["apiGroups"]
        for r in rule["resources"]
        for v in rule["verbs"]
        for name in rule.get("resourceNames") or ["*"]
    }
    agent = make_agent(api, repo, tmp_path, leader_election=True)
    assert agent._elector.try_acquire_or_renew()
    agent.leading.set()
    assert agent.step() == "applied"
    # Drift, healed: gets, lists, dry-runs, applies; and a prune.
    repo.edit("apps/storefront/web.yaml", "LOG_FORMAT: json", "LOG_FORMAT: text")
    repo.commit("change")
    assert agent.step() == "applied"
    agent._elector.release()

    used = set()
    for r in api.requests:
        if r.verb not in _RBAC_VERBS or r.resource in ("", "discovery", "version", "openapi"):
            continue  # discovery is granted to every authenticated user
        if r.field_manager == "kube-apiserver":
            continue  # the double seeding its namespaces
        used.add((_group_of(r.path), r.resource.split("/")[0], _RBAC_VERBS[r.verb], r.name))
    assert used, "no requests logged"
    # An apply that creates needs `create` as well as `patch` (authorized by name too).
    creates = {(g, res, "create", name) for g, res, v, name in used if v == "patch"}
    missing = sorted(
        (g, res, v, name)
        for g, res, v, name in used | creates
        if (g, res, v, "*") not in granted and (g, res, v, name) not in granted
    )
    assert missing == [], f"the role does not grant: {missing}"
    assert not any(res == "secrets" for _, res, _, _ in used), "the agent read Secrets"


# -- Secret values never leave the cluster -------------------------------------------------


def _secret_fleet(repo: Repo) -> None:
    """A Manifests Secret without values: specc creates it, another controller fills it."""
    (repo.work / "fleet/apps/storefront/token.yaml").write_text(
        "apiVersion: specc.dev/v1alpha1\nkind: Manifests\n"
        "metadata: {name: token, team: storefront}\n"
        "spec:\n  objects:\n    - apiVersion: v1\n      kind: Secret\n"
        "      metadata: {name: api-token}\n      type: Opaque\n",
        encoding="utf-8",
    )


def _fill_secret(cluster: Cluster) -> None:
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "api-token", "namespace": "storefront"},
            "data": {"token": SECRET_B64},
            "stringData": {"plain": SECRET},
        },
        force=True,
        manager="external-secrets",
    )


def _clean(text: str, where: str) -> None:
    assert SECRET not in text, f"the secret value appears in {where}"
    assert SECRET_B64 not in text, f"the secret's base64 appears in {where}"


def test_a_secret_filled_in_the_cluster_never_shows_in_logs_reports_status_or_metrics(
    api: ApiServer, tmp_path: Path
) -> None:
    repo = Repo(tmp_path)
    _secret_fleet(repo)
    repo.commit("a secret without values")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("specc.test.security")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    agent = make_agent(api, repo, tmp_path)
    agent.logger = logger
    assert agent.step() == "applied"
    cluster = client(api)
    _fill_secret(cluster)
    # Drift on the Secret's own fields too: a label another manager changed.
    cluster.request(
        "patch",
        "PATCH",
        "/api/v1/namespaces/storefront/secrets/api-token",
        [("fieldManager", "kubectl-edit")],
        {"metadata": {"labels": {"app.kubernetes.io/managed-by": "someone"}}},
        "application/merge-patch+json",
    )
    assert agent.step() == "healed"
    # A commit that tries to carry the value is refused, and the refusal does not quote it.
    repo.edit(
        "apps/storefront/token.yaml",
        "type: Opaque\n",
        f"type: Opaque\n      stringData: {{token: {SECRET}}}\n",
    )
    repo.commit("oops, a value")
    assert agent.step() == "invalid"

    from prometheus_client import generate_latest

    _clean(stream.getvalue(), "the agent's JSON logs")
    _clean(generate_latest(agent.metrics.registry).decode(), "the metrics")
    _clean(json.dumps(read_status(cluster, ApplySetParent.for_cluster(CLUSTER))), "the status")
    render = agent.last_render  # the last good commit, the one with the Secret
    assert render is not None and any(o.kind == "Secret" for o in render.objects)
    plan, _, _ = plan_cluster(cluster, render)
    _clean(json.dumps(plan.to_dict(), default=str), "the plan")
    _clean(json.dumps(sync(cluster, render).to_dict(), default=str), "the sync result")


def test_plan_and_sync_commands_never_print_a_secret_value(api: ApiServer, fleet: Path) -> None:
    (fleet / "apps/storefront/monitoring.yaml").unlink(missing_ok=True)
    (fleet / "apps/storefront/token.yaml").write_text(
        "apiVersion: specc.dev/v1alpha1\nkind: Manifests\n"
        "metadata: {name: token, team: storefront}\n"
        "spec:\n  objects:\n    - apiVersion: v1\n      kind: Secret\n"
        "      metadata: {name: api-token}\n      type: Opaque\n",
        encoding="utf-8",
    )
    kube = ["--kubeconfig", str(api.kubeconfig_path), "--context", "specc-double"]
    runner = CliRunner()
    first = runner.invoke(cli, ["sync", str(fleet), "--cluster", "dev", *kube])
    assert first.exit_code == 0, first.output
    _fill_secret(client(api))
    for args in (
        ["plan", str(fleet), "--cluster", "dev", *kube],
        ["plan", str(fleet), "--cluster", "dev", "-o", "json", *kube],
        ["sync", str(fleet), "--cluster", "dev", "-o", "json", *kube],
        ["sync", str(fleet), "--cluster", "dev", *kube],
    ):
        result = runner.invoke(cli, args)
        assert result.exit_code in (0, 1), result.output
        _clean(result.output, " ".join(args[:3]))


def _secret(data: dict[str, str]) -> DesiredObject:
    return DesiredObject(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "s", "namespace": "ns"},
            "data": data,
            "stringData": {"plain": data.get("token", "")},
        },
        Position("apps/x.yaml", 1),
    )


def test_diff_masks_secret_values_in_text_json_and_markdown() -> None:
    base = [_secret({"token": "b2xk"})]
    head = [_secret({"token": SECRET, "other": SECRET_B64})]
    result = diff_cluster("dev", base, head)
    assert result.changed, "the secret change is listed"
    from specc.diff import FleetDiff

    fleet_diff = FleetDiff([result], 0.25)
    sides = (Side("main", "a" * 40), Side("HEAD", "b" * 40))
    _clean(json.dumps(diff_json(fleet_diff, *sides)), "diff --output json")
    _clean("\n".join(line for line, _ in diff_text(fleet_diff, *sides)), "diff text")
    _clean(diff_markdown(fleet_diff, *sides), "diff markdown")


# -- the webhook's HMAC ---------------------------------------------------------------------


def _sign(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def test_webhook_signature_refuses_every_near_miss() -> None:
    key, body = b"k3y", b'{"ref":"refs/heads/main"}'
    good = _sign(key, body)
    assert verify_signature(key, body, good)
    near = [
        good[:-1] + ("0" if good[-1] != "0" else "1"),  # last digit
        good.upper().replace("SHA256=", "sha256="),  # hex in capitals
        good + "00",
        good[:-2],
        "sha256=",
        "sha1=" + hmac.new(key, body, hashlib.sha1).hexdigest(),
        _sign(b"other", body),
        _sign(key, body + b" "),
        " " + good,
    ]
    for header in near:
        assert not verify_signature(key, body, header), header
    assert not verify_signature(b"", body, _sign(b"", body)), "an empty secret accepts anything"
    assert not verify_signature(None, body, good)


def test_webhook_signature_is_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[Any, Any]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    key, body = b"k3y", b"{}"
    assert verify_signature(key, body, _sign(key, body))
    assert not verify_signature(key, body, "sha256=" + "0" * 64)
    assert len(calls) == 2
    # And no == on the digest anywhere in the function.
    tree = ast.parse(Path(agent_module.__file__).read_text(encoding="utf-8"))
    fn = next(
        n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "verify_signature"
    )
    assert not any(
        isinstance(op, ast.Eq | ast.NotEq)
        for n in ast.walk(fn)
        if isinstance(n, ast.Compare)
        for op in n.ops
    )


# -- no shell ---------------------------------------------------------------------------------

_SUBPROCESS = {"run", "Popen", "call", "check_call", "check_output", "getoutput", "getstatusoutput"}
_OS_SHELL = {
    "system",
    "popen",
    "execl",
    "execlp",
    "execle",
    "execv",
    "execvp",
    "execvpe",
    "spawnl",
    "spawnlp",
    "spawnv",
    "spawnvp",
}


def _shell_uses(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        owner = node.func.value
        name = node.func.attr
        where = f"{path.relative_to(ROOT)}:{node.lineno}"
        if isinstance(owner, ast.Name) and owner.id == "os" and name in _OS_SHELL:
            out.append(f"{where}: os.{name}")
        if isinstance(owner, ast.Name) and owner.id == "subprocess" and name in _SUBPROCESS:
            if name in ("getoutput", "getstatusoutput"):
                out.append(f"{where}: subprocess.{name} runs a shell")
            for kw in node.keywords:
                if kw.arg == "shell" and not (
                    isinstance(kw.value, ast.Constant) and kw.value.value is False
                ):
                    out.append(f"{where}: shell=")
            first = node.args[0] if node.args else None
            if isinstance(first, ast.Constant | ast.JoinedStr | ast.BinOp):
                out.append(f"{where}: a command string instead of an argument list")
    return out


def test_no_module_runs_a_shell_or_passes_a_command_string() -> None:
    files = sorted(SPECC.rglob("*.py"))
    assert len(files) > 30
    problems = [p for f in files for p in _shell_uses(f)]
    assert problems == []
    # The checker itself catches what it should.
    bad = ROOT / "tests" / "_shell_probe.py"
    try:
        bad.write_text(
            "import os, subprocess\nos.system('x')\nsubprocess.run('ls -l', shell=True)\n",
            encoding="utf-8",
        )
        assert len(_shell_uses(bad)) == 3
    finally:
        bad.unlink()


@pytest.mark.parametrize(
    "url",
    [
        "--upload-pack=touch /tmp/specc-pwned",
        "-u",
        "",
        "ext::sh -c touch% /tmp/specc-pwned",
        "fd::17",
        "/tmp/x\n--upload-pack=y",
    ],
)
def test_a_hostile_repository_url_fails_safely(url: str, tmp_path: Path) -> None:
    marker = Path("/tmp/specc-pwned")
    marker.unlink(missing_ok=True)
    source = GitSource(GitSourceOptions(url=url, workdir=tmp_path / "m", timeout=20))
    with pytest.raises(GitError) as info:
        source.fetch()
    assert not marker.exists()
    assert "Traceback" not in str(info.value)


@pytest.mark.parametrize(
    "branch",
    [
        "main; rm -rf /",
        "--upload-pack=touch /tmp/specc-pwned",
        "-x",
        "a..b",
        "a b",
        "x:y",
        "main\n",
        "refs/heads/../x",
        "ma~1",
        "@{-1}",
        ".hidden",
        "x.lock",
    ],
)
def test_a_hostile_branch_is_refused_before_git_sees_it(branch: str, tmp_path: Path) -> None:
    with pytest.raises(GitError, match="not a valid git branch name"):
        check_branch(branch)
    source = GitSource(
        GitSourceOptions(url=str(tmp_path / "r.git"), branch=branch, workdir=tmp_path / "m")
    )
    with pytest.raises(GitError):
        source.fetch()
    assert not (tmp_path / "m").exists(), "git ran for a hostile branch"


@pytest.mark.parametrize("branch", ["main", "release/1.2", "feature/x-y_z", "v1.0"])
def test_ordinary_branch_names_pass(branch: str) -> None:
    check_branch(branch)
    check_url("https://github.com/acme/fleet.git")
    check_url("git@github.com:acme/fleet.git")


def test_an_ssh_key_path_reaches_the_ssh_command_as_one_quoted_word(tmp_path: Path) -> None:
    hostile = "/keys/id; touch /tmp/specc-pwned #"
    source = GitSource(GitSourceOptions(url="git@x:y.git", workdir=tmp_path, ssh_key_file=hostile))
    words = shlex.split(source._env()["GIT_SSH_COMMAND"])
    assert words[:3] == ["ssh", "-i", hostile]
