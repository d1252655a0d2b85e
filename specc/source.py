"""The agent's git source: fetch one branch with the git binary, check commits, extract trees.

git runs with an argument list, never through a shell. Credentials stay out of argv:
an HTTPS token is passed as an ``http.extraHeader`` through GIT_CONFIG_* variables.
"""

from __future__ import annotations

import io
import os
import shlex
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

from specc.errors import GitError


@dataclass(frozen=True)
class GitSourceOptions:
    url: str
    branch: str = "main"
    #: Where the local mirror lives.
    workdir: Path = Path(".specc-agent/repo")
    token_file: str | None = None
    token_env: str | None = None
    ssh_key_file: str | None = None
    #: GNUPGHOME holding the keys whose signatures are trusted (with verify_signatures).
    keyring: str | None = None
    timeout: float = 120.0


class GitSource:
    """A bare mirror of one branch of a repository."""

    def __init__(self, options: GitSourceOptions) -> None:
        self.options = options
        self.dir = options.workdir

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_CONFIG_")}
        env["GIT_TERMINAL_PROMPT"] = "0"
        token = self._token()
        if token:
            env["GIT_CONFIG_COUNT"] = "1"
            env["GIT_CONFIG_KEY_0"] = "http.extraHeader"
            env["GIT_CONFIG_VALUE_0"] = f"Authorization: Bearer {token}"
        if self.options.ssh_key_file:
            # git hands GIT_SSH_COMMAND to a shell; the path is quoted, nothing else is user input.
            key = shlex.quote(self.options.ssh_key_file)
            env["GIT_SSH_COMMAND"] = (
                f"ssh -i {key} -o IdentitiesOnly=yes -o StrictHostKeyChecking=accept-new"
            )
        if self.options.keyring:
            env["GNUPGHOME"] = self.options.keyring
        return env

    def _token(self) -> str:
        if self.options.token_file:
            try:
                return Path(self.options.token_file).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise GitError(
                    f"{self.options.token_file}: cannot read token: {exc.strerror}"
                ) from exc
        if self.options.token_env:
            return os.environ.get(self.options.token_env, "").strip()
        return ""

    def git(
        self, *args: str, check: bool = True, stdout_bytes: bool = False
    ) -> subprocess.CompletedProcess[bytes]:
        """Run git in the mirror; raise GitError with git's own words when it fails."""
        try:
            proc = subprocess.run(
                ["git", "--git-dir", str(self.dir), *args],
                capture_output=True,
                env=self._env(),
                timeout=self.options.timeout,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise GitError(f"git {args[0]}: {exc}") from exc
        if check and proc.returncode != 0:
            message = proc.stderr.decode("utf-8", "replace").strip().splitlines()
            raise GitError(f"git {args[0]} failed: {message[-1] if message else proc.returncode}")
        return proc

    def fetch(self) -> str:
        """Fetch the branch (cloning the first time); return the commit it points at."""
        if not (self.dir / "HEAD").is_file():
            self.dir.mkdir(parents=True, exist_ok=True)
            self.git("init", "--bare", "--quiet")
            self.git("remote", "add", "origin", self.options.url)
        ref = f"refs/remotes/origin/{self.options.branch}"
        # "+" accepts a rewound branch here; whether to apply it is decided by the caller.
        self.git(
            "fetch", "--quiet", "--no-tags", "origin", f"+refs/heads/{self.options.branch}:{ref}"
        )
        return self.git("rev-parse", "--verify", f"{ref}^{{commit}}").stdout.decode().strip()

    def descends(self, ancestor: str, commit: str) -> bool:
        """Return whether ``commit`` has ``ancestor`` in its history (or is it)."""
        proc = self.git("merge-base", "--is-ancestor", ancestor, commit, check=False)
        if proc.returncode not in (0, 1):
            return False  # unknown ancestor (history rewritten away): not a descendant
        return proc.returncode == 0

    def verified(self, commit: str) -> bool:
        """Return whether ``git verify-commit`` accepts the commit's signature."""
        return self.git("verify-commit", commit, check=False).returncode == 0

    def extract(self, commit: str, dest: Path) -> Path:
        """Write the tree of ``commit`` into ``dest`` (which must be empty); return ``dest``."""
        data = self.git("archive", "--format=tar", commit).stdout
        dest.mkdir(parents=True, exist_ok=True)
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            # The "data" filter refuses absolute paths, traversal and links leaving dest.
            tar.extractall(dest, filter="data")
        return dest

    def subject(self, commit: str) -> str:
        return (
            self.git("log", "-1", "--format=%s", commit).stdout.decode("utf-8", "replace").strip()
        )
