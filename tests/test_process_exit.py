"""How a specc process ends: at once after the command, with what a normal exit keeps.

The CLI skips the interpreter's teardown (``specc.cli._end_process``); these run real
processes to show that the exit code, the whole output, the exit handlers and the
threads a normal exit waits for are all kept, and that the teardown really is skipped.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from specc.cli import cli
from tests.helpers import FLEET, edit

ENV = {**os.environ, "GITHUB_ACTIONS": "false"}


def specc_process(prelude: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``specc ARGS`` as the console script does, after ``prelude``."""
    code = f"import sys\n{prelude}\nsys.argv = ['specc', *{list(args)!r}]\nfrom specc.cli import main\nmain()\n"
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=ENV, timeout=120
    )


def test_a_large_output_arrives_whole_through_a_pipe() -> None:
    done = specc_process("", "render", str(FLEET), "--cluster", "prod-eu", "-o", "json")
    in_process = CliRunner().invoke(
        cli, ["render", str(FLEET), "--cluster", "prod-eu", "-o", "json"]
    )
    assert done.returncode == in_process.exit_code == 0
    assert len(done.stdout) > 65_536  # more than a pipe holds: written while the reader reads
    assert json.loads(done.stdout) == json.loads(in_process.stdout)


def test_exit_handlers_run_and_the_exit_code_is_kept(fleet: Path) -> None:
    edit(fleet, "apps/storefront/web.yaml", "storefront-web:2.14.1", "storefront-web")
    prelude = "import atexit\natexit.register(lambda: print('handler ran', file=sys.stderr))"
    bad = specc_process(prelude, "validate", str(fleet))
    assert bad.returncode == 1
    assert "error: spec.image" in bad.stderr
    assert bad.stderr.rstrip().endswith("handler ran")
    usage = specc_process(prelude, "validate", "--no-such-option")
    assert usage.returncode == 2
    assert "handler ran" in usage.stderr


def test_a_thread_a_normal_exit_waits_for_is_waited_for(tmp_path: Path) -> None:
    mark = tmp_path / "thread-finished"
    prelude = (
        "import threading, time\n"
        "def late():\n"
        "    time.sleep(0.5)\n"
        f"    open({str(mark)!r}, 'w').close()\n"
        "threading.Thread(target=late).start()"
    )
    done = specc_process(prelude, "validate", str(FLEET))
    assert done.returncode == 0, done.stderr
    assert mark.exists()


def test_the_interpreter_teardown_is_skipped() -> None:
    # A module global's finalizer runs in the teardown; after a finished command, nothing
    # of specc's needs it, so its absence is what skipping the teardown looks like.
    prelude = (
        "class Noisy:\n"
        "    def __del__(self):\n"
        "        print('torn down', file=sys.stderr)\n"
        "noisy = Noisy()"
    )
    done = specc_process(prelude, "validate", str(FLEET))
    assert done.returncode == 0
    assert "torn down" not in done.stderr
