"""Hostile and broken input: every case exits 1 with file:line, no traceback, bounded, nothing applied.

Static cases live in ``tests/corpus/<case>/``: files laid over the small valid fleet in
``tests/corpus/_base/`` and an ``expect.txt`` (``stage``: the pipeline stage that
refuses it, ``validate`` for the spec stages or ``render`` for compile and schema check;
``specc validate`` runs them all, so both commands refuse every case; ``at``:
``file:line``; ``message``: a fragment of the message). Cases that cannot be committed (gigantic inputs, non-UTF-8 bytes, symlinks,
FIFOs) are built at test time by the table ``GENERATED`` below.

Each case runs through ``specc validate`` and ``specc render`` in-process; a few run
as subprocesses (no traceback on stderr, the child's peak memory), and a few through
``specc sync`` against the API server double, which must see no request at all.
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from specc.cli import cli
from specc.load import MAX_DOCUMENTS
from specc.testing import ApiServer

CORPUS = Path(__file__).resolve().parent / "corpus"
BASE = CORPUS / "_base"
WEB = "apps/alpha/web.yaml"
#: CPU seconds per case and command: the work is bounded whatever else the machine runs
#: (wall time on a loaded 2-core CI machine is several times this; the slowest case uses ~2 s).
TIME_LIMIT = 10.0
#: Growth of the process's peak memory one case may cause.
MEMORY_LIMIT_MB = 400
#: Secret values the cases carry; no output may contain them.
SECRETS = ("hunter2-corpus", "aHVudGVyMi1jb3JwdXM")


@dataclass(frozen=True)
class Case:
    name: str
    stage: str
    #: ``file:line`` (exact line), ``file:`` (some line), or ``file`` (a whole-file problem).
    at: str
    message: str
    build: Callable[[Path], None]


def _overlay(case_dir: Path) -> Callable[[Path], None]:
    def build(root: Path) -> None:
        for src in case_dir.rglob("*"):
            if src.is_file() and src.name != "expect.txt":
                dst = root / src.relative_to(case_dir)
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, dst)

    return build


def static_cases() -> list[Case]:
    out = []
    for case_dir in sorted(p for p in CORPUS.iterdir() if p.is_dir() and p.name != "_base"):
        fields = dict(
            line.split(": ", 1)
            for line in (case_dir / "expect.txt").read_text(encoding="utf-8").splitlines()
            if line and not line.startswith("#")
        )
        out.append(
            Case(
                case_dir.name, fields["stage"], fields["at"], fields["message"], _overlay(case_dir)
            )
        )
    return out


def _web() -> str:
    return (BASE / WEB).read_text(encoding="utf-8")


def _write(rel: str, text: str) -> Callable[[Path], None]:
    def build(root: Path) -> None:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")

    return build


def _web_with(old: str, new: str) -> Callable[[Path], None]:
    def build(root: Path) -> None:
        text = _web()
        assert old in text
        (root / WEB).write_text(text.replace(old, new, 1), encoding="utf-8")

    return build


def _bytes(rel: str, data: Callable[[], bytes]) -> Callable[[Path], None]:
    def build(root: Path) -> None:
        (root / rel).write_bytes(data())

    return build


def _symlink(rel: str, target: str, replace: bool = False) -> Callable[[Path], None]:
    def build(root: Path) -> None:
        if replace:
            (root / rel).unlink()
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, root / rel)

    return build


def _fifo(rel: str, replace: bool = False) -> Callable[[Path], None]:
    def build(root: Path) -> None:
        if replace:
            (root / rel).unlink()
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        os.mkfifo(root / rel)

    return build


def _loop(a: str, b: str) -> Callable[[Path], None]:
    def build(root: Path) -> None:
        for path in (a, b):
            (root / path).unlink(missing_ok=True)
        os.symlink(Path(b).name, root / a)
        os.symlink(Path(a).name, root / b)

    return build


def _manifests_file(ref: str, then: Callable[[Path], None]) -> Callable[[Path], None]:
    def build(root: Path) -> None:
        (root / "apps/alpha/raw.yaml").write_text(
            "apiVersion: specc.dev/v1alpha1\nkind: Manifests\n"
            f"metadata: {{name: raw, team: alpha}}\nspec:\n  files: [{ref}]\n",
            encoding="utf-8",
        )
        then(root)

    return build


def _stack_with_expr(expr: str) -> Callable[[Path], None]:
    """A MonitoringStack whose one rule has ``expr`` (line 11 of apps/alpha/mon.yaml)."""
    return _write(
        "apps/alpha/mon.yaml",
        "apiVersion: specc.dev/v1alpha1\nkind: MonitoringStack\n"
        "metadata: {name: mon, team: alpha}\nspec:\n  prometheus: {storage: {size: 1Gi}}\n"
        "  rules:\n    groups:\n      - name: g\n        rules:\n          - record: x:y\n"
        f"            expr: '{expr}'\n",
    )


MB = 1 << 20
GENERATED = [
    # The API server refuses a ConfigMap whose values pass 1 MiB; validate says so first.
    Case("config-over-1mib", "render", f"{WEB}:", "over the API server's limit of 1048576",
         _write("config/app.conf", "x" * (1536 << 10))),
    Case("big-file", "validate", "apps/alpha/big.yaml", "over the 4194304 limit",
         _write("apps/alpha/big.yaml", "# " + "x" * (5 * MB) + "\n")),
    Case("big-name", "validate", f"{WEB}:4", "characters)",
         _web_with("  name: web\n", "  name: " + "w" * (3 * MB) + "\n")),
    Case("big-image", "validate", f"{WEB}:7", "characters)",
         _web_with("ghcr.io/acme/web:1.0.0", "ghcr.io/acme/web:" + "1" * (3 * MB))),
    # libyaml refuses a key over 1024 characters before specc sees it.
    Case("big-key", "validate", f"{WEB}:8", "invalid YAML",
         _web_with("  replicas: 2\n", "  " + "k" * (3 * MB) + ": 2\n")),
    Case("big-single-line", "validate", "apps/alpha/line.yaml:", "invalid YAML",
         _write("apps/alpha/line.yaml", "a: " + "{" * 10 + "x" * (3 * MB) + "\n")),
    Case("many-documents", "validate", f"apps/alpha/many.yaml:{MAX_DOCUMENTS + 1}",
         f"more than {MAX_DOCUMENTS} documents", _write("apps/alpha/many.yaml", "--- {a: 1}\n" * 300_000)),
    Case("many-unknown-fields", "validate", "apps/alpha/unk.yaml:", "more problems in this document",
         _write("apps/alpha/unk.yaml", _web().replace("  name: web", "  name: unk").replace(
             "spec:\n", "spec:\n" + "".join(f"  k{i}: v\n" for i in range(100_000))))),
    Case("many-duplicate-keys", "validate", "apps/alpha/dup.yaml:", "more problems in this file",
         _write("apps/alpha/dup.yaml", "a: 1\n" * 100_000)),
    Case("deep-flow-100k", "validate", f"{WEB}:14", "nesting deeper than 64",
         _web_with("    LOG_LEVEL: info\n", "    LOG_LEVEL: " + "[" * 100_000 + "]" * 100_000 + "\n")),
    Case("deep-block-1500", "validate", f"{WEB}:", "nesting deeper than 64",
         _web_with("    LOG_LEVEL: info\n", "".join(" " * (4 + i) + f"k{i}:\n" for i in range(1500)))),
    Case("non-utf8-latin1", "validate", f"{WEB}:14:19", "not valid UTF-8",
         _bytes(WEB, lambda: _web().replace("LOG_LEVEL: info", "LOG_LEVEL: caf\xe9").encode("latin-1"))),
    Case("non-utf8-utf16", "validate", f"{WEB}:1:1", "not valid UTF-8",
         _bytes(WEB, lambda: _web().encode("utf-16"))),
    Case("nul-byte", "validate", f"{WEB}:14", "U+0000 is not allowed",
         _web_with("LOG_LEVEL: info", "LOG_LEVEL: in\0fo")),
    Case("symlink-app-to-etc-passwd", "validate", "apps/alpha/passwd.yaml", "leaves the fleet root",
         _symlink("apps/alpha/passwd.yaml", "/etc/passwd")),
    Case("symlink-folder-out-of-root", "validate", "apps/etc", "folder leaves the fleet root",
         _symlink("apps/etc", "/etc")),
    Case("symlink-config-to-etc-shadow", "validate", f"{WEB}:17", "leaves the fleet root",
         _symlink("config/app.conf", "/etc/shadow", replace=True)),
    Case("symlink-config-to-dev-zero", "validate", f"{WEB}:17", "leaves the fleet root",
         _symlink("config/app.conf", "/dev/zero", replace=True)),
    Case("symlink-loop-app", "validate", "apps/alpha/a.yaml", "symlink loop",
         _loop("apps/alpha/a.yaml", "apps/alpha/b.yaml")),
    Case("symlink-loop-config", "validate", f"{WEB}:17", "symlink loop",
         _loop("config/app.conf", "config/other.conf")),
    Case("symlink-manifests-file", "validate", "apps/alpha/raw.yaml:5", "leaves the fleet root",
         _manifests_file("../../raw/x.yaml", _symlink("raw/x.yaml", "/etc/hosts"))),
    Case("fifo-app-file", "validate", "apps/alpha/pipe.yaml", "not a regular file",
         _fifo("apps/alpha/pipe.yaml")),
    Case("fifo-config-file", "validate", f"{WEB}:17", "is not a regular file",
         _fifo("config/app.conf", replace=True)),
    Case("fifo-manifests-file", "validate", "apps/alpha/raw.yaml:5", "is not a regular file",
         _manifests_file("../../raw/x.yaml", _fifo("raw/x.yaml"))),
    # PromQL that crashed a native parser (stack overflow) or cost cubic time and memory.
    Case("promql-10000-unary-minus", "validate", "apps/alpha/mon.yaml:11", "nests deeper than",
         _stack_with_expr("-" * 10_000 + "up")),
    Case("promql-5000-or-terms", "validate", "apps/alpha/mon.yaml:11", "nests deeper than",
         _stack_with_expr(" or ".join(["up"] * 5_000))),
    Case("promql-12000-parentheses", "validate", "apps/alpha/mon.yaml:11", "nests deeper than",
         _stack_with_expr("(" * 12_000 + "up" + ")" * 12_000)),
    Case("promql-5000-nested-calls", "validate", "apps/alpha/mon.yaml:11", "nests deeper than",
         _stack_with_expr("abs(" * 5_000 + "up" + ")" * 5_000)),
    Case("promql-50kb-expression", "validate", "apps/alpha/mon.yaml:11", "over specc's limit",
         _stack_with_expr("sum(" + " + ".join(['rate(http_requests_total{job="web"}[5m])'] * 1_300) + ")")),
    Case("template-10000-nested-ifs", "validate", "apps/alpha/mon.yaml:", "nests deeper than",
         _write("apps/alpha/mon.yaml", "apiVersion: specc.dev/v1alpha1\nkind: MonitoringStack\n"
                "metadata: {name: mon, team: alpha}\nspec:\n  prometheus: {storage: {size: 1Gi}}\n"
                "  rules:\n    groups:\n      - name: g\n        rules:\n          - alert: A\n"
                "            expr: up == 0\n            labels: {severity: info}\n"
                "            annotations: {summary: '" + "{{ if 1 }}" * 10_000 + "'}\n")),
]  # fmt: skip

CASES = static_cases() + GENERATED


def build_fleet(case: Case, tmp_path: Path) -> Path:
    root = tmp_path / "fleet"
    shutil.copytree(BASE, root)
    case.build(root)
    return root


def assert_located(case: Case, output: str) -> None:
    if case.at.endswith(":"):
        assert re.search(re.escape(case.at) + r"\d+:\d+: ", output), output[:2000]
    elif re.search(r":\d+(:\d+)?$", case.at):
        assert re.search(re.escape(case.at) + r"[:\s]", output), output[:2000]
    else:  # a problem of the whole file: named, without a line
        assert f"{case.at}: " in output, output[:2000]
    assert case.message in output, output[:2000]


def run_cli(args: list[str]) -> tuple[int, str, float, float]:
    """Return exit code, output, seconds, and growth of peak memory (MB) of one command."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.process_time()
    result = CliRunner().invoke(cli, args)
    seconds = time.process_time() - started
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"{args[0]} raised {result.exception!r}") from result.exception
    return result.exit_code, result.output, seconds, grown


def test_the_corpus_has_at_least_50_cases() -> None:
    assert len(CASES) >= 50
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_input_exits_1_at_file_line_without_traceback(case: Case, tmp_path: Path) -> None:
    root = build_fleet(case, tmp_path)
    # validate runs every stage render does, so a pre-commit hook refuses what sync would.
    commands = [["validate", str(root)], ["render", str(root), "--out", str(tmp_path / "out")]]
    for args in commands:
        code, output, seconds, grown = run_cli(args)
        assert code == 1, f"{args[0]}: exit {code}\n{output[:2000]}"
        assert "Traceback" not in output
        assert_located(case, output)
        assert len(output) < 300_000, f"{len(output)} characters of errors"
        assert not any(s in output for s in SECRETS), "a secret value was echoed"
        assert seconds < TIME_LIMIT, f"{args[0]} used {seconds:.1f} CPU seconds"
        assert grown < MEMORY_LIMIT_MB, f"{args[0]} grew the peak memory by {grown:.0f} MB"
    # Nothing was written for a fleet that does not render.
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.yaml"))


def test_json_output_locates_every_error(tmp_path: Path) -> None:
    import json

    case = next(c for c in CASES if c.name == "yaml-duplicate-key")
    root = build_fleet(case, tmp_path)
    code, output, _, _ = run_cli(["validate", str(root), "--output", "json"])
    assert code == 1
    (error,) = json.loads(output)["errors"]
    assert (error["file"], error["line"]) == (str(root / WEB), 9)
    assert "duplicate key" in error["message"]


SUBPROCESS_CASES = [
    "promql-10000-unary-minus",
    "promql-12000-parentheses",
    "promql-50kb-expression",
    "big-file",
    "big-image",
    "many-documents",
    "deep-flow-100k",
    "yaml-bomb",
    "symlink-loop-app",
    "non-utf8-latin1",
    "yaml-python-tag",
]


@pytest.mark.parametrize("name", SUBPROCESS_CASES)
def test_the_specc_process_prints_no_traceback_and_stays_small(name: str, tmp_path: Path) -> None:
    case = next(c for c in CASES if c.name == name)
    root = build_fleet(case, tmp_path)
    for command in (["validate", str(root)], ["render", str(root), "--out", str(tmp_path / "o")]):
        proc = subprocess.Popen(
            [sys.executable, "-m", "specc", *command],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            out, err = proc.communicate(timeout=60)
        finally:
            proc.kill()
        assert proc.returncode == 1, err.decode()[-2000:]
        text = out.decode() + err.decode()
        assert "Traceback" not in text
        assert_located(case, text)
    # The largest peak of any child this process waited for: an upper bound of these.
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    assert peak_mb < 1024, f"a specc process peaked at {peak_mb:.0f} MB"


SYNC_CASES = [
    "manifests-other-team-namespace",
    "manifests-cluster-role",
    "manifests-secret-stringdata",
    "yaml-bomb",
    "symlink-config-to-etc-shadow",
    "type-replicas-string",
]


@pytest.mark.parametrize("name", SYNC_CASES)
def test_a_broken_fleet_is_never_applied(name: str, tmp_path: Path) -> None:
    if os.environ.get("SPECC_TEST_KUBECONFIG"):
        pytest.skip("reads the double's request log")
    case = next(c for c in CASES if c.name == name)
    root = build_fleet(case, tmp_path)
    with ApiServer() as srv:
        srv.log.clear()
        args = ["sync", str(root), "--cluster", "c1", "--kubeconfig", str(srv.kubeconfig_path)]
        code, output, _, _ = run_cli(args)
        assert code == 1 and "Traceback" not in output
        assert_located(case, output)
        # Rendering fails before the cluster is even contacted.
        assert srv.requests == []
