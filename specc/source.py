"""The agent's git source: fetch one branch with the git binary, check commits, extract trees.

git runs with an argument list, never through a shell. Credentials stay out of argv:
an HTTPS token is passed as an ``http.extraHeader`` through GIT_CONFIG_* variables.
"""

from __future__ import annotations

import io
import os
import re
import shlex
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

from specc.errors import GitError

#: Transports the agent may fetch over; git's own ext:: and fd:: run commands.
ALLOWED_PROTOCOLS = "https:ssh:git:http:file"
#: What git's check-ref-format refuses in a branch name (see git-check-ref-format(1)).
_BAD_REF = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{|//|/\.|\.lock(/|$)")


def check_url(url: str) -> None:
    """Raise GitError unless ``url`` can only be read as a repository URL, never an option."""
    if not url or url.startswith("-"):
        raise GitError(f"repository URL {url!r} must not be empty or start with '-'")
    if any(c in url for c in "\x00\n\r"):
        raise GitError(f"repository URL {url!r} contains a control character")


def check_branch(branch: str) -> None:
    """Raise GitError unless ``branch`` is a valid git branch name that is not an option."""
    if (
        not branch
        or branch.startswith(("-", "/", "."))
        or branch.endswith(("/", "."))
        or branch == "@"
        or _BAD_REF.search(branch)
    ):
        raise GitError(f"branch {branch!r} is not a valid git branch name")


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
        env.setdefault("GIT_ALLOW_PROTOCOL", ALLOWED_PROTOCOLS)
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

    def git(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
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
        url, branch = self.options.url, self.options.branch
        check_url(url)
        check_branch(branch)
        if not (self.dir / "HEAD").is_file():
            self.dir.mkdir(parents=True, exist_ok=True)
            self.git("init", "--bare", "--quiet")
        # Set the URL on every fetch: a mirror left by an earlier run (or a failed first
        # one) may have another URL, or none. "--" keeps the URL from being read as an option.
        current = self.git("config", "--get", "remote.origin.url", check=False)
        if current.returncode != 0:
            self.git("remote", "add", "--", "origin", url)
        elif current.stdout.decode("utf-8", "replace").strip() != url:
            self.git("remote", "set-url", "--", "origin", url)
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
