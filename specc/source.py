"""The agent's git source: fetch one branch with the git binary, check commits, extract trees.

git runs with an argument list, never through a shell. Credentials stay out of argv:
an HTTPS token is passed as an ``http.extraHeader`` through GIT_CONFIG_* variables.
"""

from __future__ import annotations

import copy
import os
import re
import shlex
import subprocess
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

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
    #: Where the local mirror lives: a cache directory, never the current one.
    workdir: Path = field(default_factory=lambda: default_workdir() / "repo")
    token_file: str | None = None
    token_env: str | None = None
    ssh_key_file: str | None = None
    #: GNUPGHOME holding the keys whose signatures are trusted (with verify_signatures).
    keyring: str | None = None
    timeout: float = 120.0


def default_workdir() -> Path:
    """Return the agent's default work directory: ``$XDG_CACHE_HOME/specc/agent``.

    ``~/.cache/specc/agent`` without XDG_CACHE_HOME; the image sets SPECC_WORKDIR to
    /var/lib/specc. Never the current directory: run from a fleet checkout, a relative
    default left a bare repository inside the working tree.
    """
    cache = os.environ.get("XDG_CACHE_HOME") or ""
    base = Path(cache) if os.path.isabs(cache) else Path.home() / ".cache"
    return base / "specc" / "agent"


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

    def extract(self, commit: str, dest: Path, folder: str = "") -> Path:
        """Write ``folder`` (default: all) of ``commit``'s tree into empty ``dest``; return its path.

        Raises GitError when the commit has no such folder, or when the folder itself is
        a symlink: a commit must not choose where the fleet is read from.
        """
        what = f"commit {commit[:12]}"
        if folder:
            kind = self.git("cat-file", "-t", f"{commit}:{folder}", check=False)
            found = kind.stdout.decode().strip()
            if kind.returncode != 0:
                raise GitError(f"{what}: no folder {folder!r}")
            if found != "tree":
                raise GitError(f"{what}: {folder!r} is a symlink or a file, not a folder")
        args = ["git", "--git-dir", str(self.dir), "archive", "--format=tar", commit]
        if folder:
            args += ["--", folder]
        dest.mkdir(parents=True, exist_ok=True)
        failure: GitError | None = None
        try:
            with subprocess.Popen(
                args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self._env()
            ) as proc:
                assert proc.stdout is not None and proc.stderr is not None
                try:
                    extract_archive(proc.stdout, dest)
                except GitError as exc:
                    failure = exc
                finally:
                    proc.stdout.close()
                err = proc.stderr.read().decode("utf-8", "replace").strip()
        except OSError as exc:
            raise GitError(f"git archive: {exc}") from exc
        if proc.returncode != 0:
            # git's own words first: a missing folder is "pathspec did not match".
            last = err.splitlines()[-1] if err else f"exit {proc.returncode}"
            raise GitError(f"{what}: git archive failed: {last}")
        if failure is not None:
            raise GitError(f"{what}: {failure}")
        return checked_folder(dest, folder, what)

    def subject(self, commit: str) -> str:
        return (
            self.git("log", "-1", "--format=%s", commit).stdout.decode("utf-8", "replace").strip()
        )


def _member_filter(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo:
    """The "data" filter, except that symlinks are kept as written.

    A repository may hold a symlink anywhere, even to an absolute path or out of the
    tree: extraction must not fail on it (a commit could otherwise stop the agent).
    The loader reads no file through a link that leaves the fleet root and reports it
    with its path, as ``specc validate`` does on a checkout. Writing *through* a link
    stays impossible: the data filter checks every other member's resolved path.
    """
    if not member.issym():
        return tarfile.data_filter(member, dest)
    # Check the link's own name like a regular file's; leave its target alone.
    probe = copy.copy(member)
    probe.type, probe.linkname = tarfile.REGTYPE, ""
    named = tarfile.data_filter(probe, dest)
    kept = copy.copy(member)
    kept.name, kept.uid, kept.gid = named.name, named.uid, named.gid
    kept.uname, kept.gname = named.uname, named.gname
    return kept


def extract_archive(stream: IO[bytes], dest: Path) -> None:
    """Extract a tar stream (``git archive``) into ``dest``; raise GitError on a hostile member.

    Symlinks are kept as written (see :func:`_member_filter`); absolute names, ``..``,
    device files and writes through links are refused.
    """
    try:
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            tar.extractall(dest, filter=_member_filter)
        # tar stops at its end marker; the writer may still send the record's padding,
        # and closing the pipe now would kill it with SIGPIPE.
        while stream.read(1 << 16):
            pass
    except tarfile.FilterError as exc:
        member = getattr(exc, "tarinfo", None)
        name = member.name if member is not None else "?"
        raise GitError(f"{name}: not extracted: {exc}") from None
    except (tarfile.TarError, OSError) as exc:
        raise GitError(f"cannot extract the tree: {exc}") from None


def checked_folder(root: Path, folder: str, what: str) -> Path:
    """Return ``root/folder``; raise GitError if it is missing or reached through a symlink."""
    path = root
    for part in Path(folder).parts if folder else ():
        path = path / part
        if path.is_symlink():
            raise GitError(f"{what}: {folder!r} is a symlink or a file, not a folder")
    if not path.is_dir():
        raise GitError(f"{what}: no folder {folder!r}")
    return path
