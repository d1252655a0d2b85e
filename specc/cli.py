"""The command line: wires stages together, prints results, maps errors to exit codes.

Nothing here decides anything a stage could decide; heavy imports happen inside the
commands that need them so that `specc validate` starts fast.
"""

from __future__ import annotations

import gc
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from specc import __version__
from specc.errors import FleetError, NotFoundError, SpeccError, UsageError, WriteError

if TYPE_CHECKING:
    from specc.agent import Agent

_OUTPUT = click.option(
    "--output",
    "-o",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Output format; json is for machines.",
)


def _fleet_arg(func: Any) -> Any:
    return click.argument("fleet", required=False, type=click.Path(path_type=Path))(func)


def resolve_fleet(fleet: Path | None) -> Path:
    """Return the fleet root: the argument, or ./fleet when it exists."""
    root = fleet if fleet is not None else Path("fleet")
    if not root.is_dir():
        if fleet is None:
            raise UsageError("no FLEET given and no ./fleet directory here")
        raise UsageError(f"FLEET {str(fleet)!r} is not a directory")
    # Findings name files relative to the root; annotations need them relative to here.
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        ctx.meta["specc.fleet_root"] = root
    return root


def _stderr() -> Any:
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def report_error(exc: SpeccError, output: str = "text") -> None:
    """Print ``exc`` for a person (stderr) or a machine (stdout json).

    Findings print as ``path:line:col: error: message`` with paths the user can open
    (relative to here, or to the repository root under GitHub Actions).
    """
    from specc import report

    root = _fleet_root()
    if isinstance(exc, FleetError):
        if output == "json":
            report.print_json({"ok": False, **report_findings(exc)})
        else:
            console = _stderr()
            for line in report.finding_lines(exc.findings, root):
                console.print(_severity_markup(line), highlight=False)
            n = len(exc.findings)
            console.print(f"[red]{n} error{'s' if n != 1 else ''}[/]")
        if report.in_github_actions():
            # stdout carries the JSON document; the runner reads commands from stderr too.
            click.echo(report.github_annotations(exc.findings, root), err=output == "json")
    else:
        if output == "json":
            report.print_json({"ok": False, "errors": [_error_json(exc)], **_connection_json()})
        else:
            _stderr().print(f"[bold red]error:[/] {_markup_escape(str(exc))}")


def _fleet_root() -> Path | None:
    ctx = click.get_current_context(silent=True)
    root = ctx.meta.get("specc.fleet_root") if ctx is not None else None
    return root if isinstance(root, Path) else None


def _error_json(exc: SpeccError) -> dict[str, Any]:
    """Return a non-fleet error in the shape of a finding (no file), so that a reader
    of ``errors`` handles one shape."""
    return {
        "file": "",
        "line": 0,
        "column": 0,
        "severity": "error",
        "field": "",
        "object": getattr(exc, "ref", ""),
        "message": str(getattr(exc, "message", exc)),
    }


def _severity_markup(line: str) -> str:
    """Return a finding line with its ``error:``/``warning:`` word coloured."""
    escaped = _markup_escape(line)
    for word, style in ((": error: ", "bold red"), (": warning: ", "bold yellow")):
        if word in escaped:
            head, _, tail = escaped.partition(word)
            return f"{head}: [{style}]{word[2:-1]}[/] {tail}"
    return escaped


def report_findings(exc: FleetError) -> dict[str, Any]:
    return {"errors": _report_findings_json(exc)}


def _report_findings_json(exc: FleetError) -> list[dict[str, Any]]:
    from specc import report

    return report.findings_json(exc.findings, _fleet_root())


def _markup_escape(s: str) -> str:
    from rich.markup import escape

    return escape(s)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="specc")
def cli() -> None:
    """specc: compile typed fleet specs into Kubernetes objects and keep clusters in sync."""


@cli.command()
@_fleet_arg
@_OUTPUT
@click.option(
    "--base",
    default=None,
    help="Also refuse what cannot follow this revision (a StatefulService's storage going down).",
)
def validate(fleet: Path | None, output: str, base: str | None) -> None:
    """Validate FLEET (default ./fleet); exit 1 listing every error with file:line:col.

    Runs every stage a sync would (load, validate, compile, schema check) without
    writing anything, so a commit that passes here is one the agent will apply. With
    --base REV (a pull request's target), a change the clusters cannot make from that
    revision is an error too: volumes never shrink.
    """
    from specc.pipeline import render_path

    try:
        root = resolve_fleet(fleet)
        valid, renders = render_path(root)
        if base is not None:
            from specc.changerules import decrease_findings
            from specc.errors import ValidationError
            from specc.gitrev import render_commit, repository_of, resolve_revision

            repo, rel = repository_of(root)
            try:
                before = render_commit(repo, resolve_revision(repo, base), rel).renders
            except FleetError:
                before = []  # a base that does not render holds no volumes to compare
            findings = decrease_findings(before, renders, base)
            if findings:
                raise ValidationError(findings)
    except SpeccError as exc:
        _exit(exc, output)
    apps = len(valid.apps)
    if output == "json":
        from specc import report

        report.print_json(
            {
                "ok": True,
                "errors": [],
                "warnings": report.findings_json(valid.warnings, _fleet_root()),
                "clusters": len(valid.clusters),
                "teams": len(valid.teams),
                "apps": apps,
            }
        )
    else:
        from specc import report

        for line in report.finding_lines(valid.warnings, _fleet_root()):
            _stderr().print(_severity_markup(line), highlight=False)
        click.echo(
            f"fleet {valid.fleet.metadata.name} is valid: {len(valid.clusters)} clusters, "
            f"{len(valid.teams)} teams, {apps} apps"
        )


@cli.command()
@_fleet_arg
@click.option(
    "--out", "out", type=click.Path(path_type=Path), help="Write files under this directory."
)
@click.option("--cluster", "clusters", multiple=True, help="Render only this cluster (repeatable).")
@click.option(
    "--output",
    "-o",
    type=click.Choice(["yaml", "json"]),
    default=None,
    help="Print the objects to stdout instead of writing files.",
)
def render(
    fleet: Path | None, out: Path | None, clusters: tuple[str, ...], output: str | None
) -> None:
    """Render FLEET into Kubernetes objects per cluster, schema-checked.

    Writes OUT/<cluster>/<namespace>/<kind>-<name>.yaml and OUT/<cluster>.index.json;
    the same fleet gives the same bytes wherever it is rendered from and to. Files an
    earlier render wrote and the fleet no longer declares are removed; no other file is.
    """
    from specc import progress as progress_
    from specc import write
    from specc.pipeline import render_path

    errors = "json" if output == "json" else "text"
    progress = progress_.for_stderr("render")
    try:
        if (out is None) == (output is None):
            raise UsageError("give --out DIR to write files, or --output yaml|json to print")
        root = resolve_fleet(fleet)
        progress.phase("load, validate, compile, check")
        try:
            valid, renders = render_path(root, list(clusters) or None)
        except KeyError as exc:
            raise UsageError(str(exc.args[0])) from None
        finally:
            progress.close()
        if output is not None and len(renders) > 1:
            # One stream of several clusters would repeat objects with nothing to tell them apart.
            names = ", ".join(r.cluster for r in renders)
            raise UsageError(f"--output prints one cluster: add --cluster (one of {names})")
    except SpeccError as exc:
        _exit(exc, errors)
    if output is not None:
        objects = [o.body for r in renders for o in r.objects]
        if output == "json":
            import json

            click.echo(
                json.dumps(
                    {"apiVersion": "v1", "kind": "List", "items": objects}, indent=2, sort_keys=True
                )
            )
        else:
            click.echo("---\n".join(write.to_yaml(o) for o in objects), nl=False)
        return
    assert out is not None
    total = write.WriteResult()
    progress.phase("write", total=sum(len(r.objects) for r in renders))
    try:
        for r in renders:
            total.add(write.write_render(r, out))
            progress.advance(len(r.objects))
        if not clusters:
            total.removed += write.remove_stale_clusters(out, [c.name for c in valid.clusters])
    except OSError as exc:
        _exit(WriteError(f"{out}: {exc.strerror or exc}"))
    except WriteError as exc:
        _exit(exc)
    progress.close()
    n = sum(len(r.objects) for r in renders)
    click.echo(
        f"rendered {n} objects for {len(renders)} cluster(s) into {out}: "
        f"{total.written} written, {total.unchanged} unchanged, {total.removed} removed"
    )


@cli.command()
@click.argument("ref", metavar="KIND/NAME")
@_fleet_arg
@click.option("--cluster", required=True, help="The cluster whose render to search.")
@_OUTPUT
def explain(ref: str, fleet: Path | None, cluster: str, output: str) -> None:
    """Show which spec line made KIND/NAME (or KIND/NAMESPACE/NAME) on a cluster."""
    from specc.compile import compile_fleet
    from specc.objects import SOURCE_ANNOTATION
    from specc.pipeline import validate_path

    parts = ref.split("/")
    if len(parts) not in (2, 3):
        _exit(UsageError(f"{ref!r}: expected KIND/NAME or KIND/NAMESPACE/NAME"), output)
    kind, name = parts[0], parts[-1]
    namespace = parts[1] if len(parts) == 3 else None
    try:
        valid = validate_path(resolve_fleet(fleet))
        try:
            (render,) = compile_fleet(valid, [cluster])
        except KeyError as exc:
            raise UsageError(str(exc.args[0])) from None
    except SpeccError as exc:
        _exit(exc, output)
    matches = [
        o
        for o in render.objects
        if o.kind.lower() == kind.lower()
        and o.name == name
        and (namespace is None or o.namespace == namespace)
    ]
    if not matches:
        _exit(NotFoundError(f"{ref}: no such object in the render of cluster {cluster!r}"), output)
    rows = []
    for o in matches:
        chain = render.overrides.get(o.origin, [])
        annotations = o.body["metadata"].get("annotations") or {}
        rows.append(
            {
                "object": o.ref,
                # The line is looked up now, in the fleet as it is: the annotation names
                # only the file and the app, so that moving lines changes no object.
                "source": f"{o.source.path}:{o.source.line}",
                "annotation": annotations.get(SOURCE_ANNOTATION, ""),
                "spec": o.origin,
                "overrides": [str(p) for p in chain],
            }
        )
    if output == "json":
        from specc import report

        report.print_json(rows)
        return
    for row in rows:
        click.echo(f"{row['object']}\n  made by  {row['spec']}\n  source   {row['source']}")
        for p in row["overrides"]:
            click.echo(f"  override {p}")


def _connection_options(func: Any) -> Any:
    """Options that say how to reach a cluster (the connection rule; README "Cluster commands")."""
    func = click.option(
        "--request-timeout",
        type=click.FloatRange(min=0.1),
        default=60.0,
        show_default=True,
        help="Seconds one request waits for its answer.",
    )(func)
    func = click.option(
        "--connect-timeout",
        type=click.FloatRange(min=0.1),
        default=10.0,
        show_default=True,
        help="Seconds to connect, and to wait for the server's first answer.",
    )(func)
    func = click.option(
        "--use-fleet-kubeconfig",
        is_flag=True,
        help="Use the kubeconfig fleet.yaml names in connection.kubeconfig (it can run programs).",
    )(func)
    func = click.option(
        "--context",
        help="Kubeconfig context (default: the cluster's connection.context in fleet.yaml).",
    )(func)
    func = click.option(
        "--kubeconfig",
        type=click.Path(),
        help="Kubeconfig file (default: KUBECONFIG, else ~/.kube/config).",
    )(func)
    return func


def _sync_options(func: Any) -> Any:
    """Options that bound what a plan or sync may do to the cluster."""
    func = click.option(
        "--allow-cluster-mismatch",
        is_flag=True,
        help="Write even though the server holds another cluster or fleet (migrations only).",
    )(func)
    func = click.option(
        "--allow-rewind",
        is_flag=True,
        help="Sync a revision that does not descend from the one the cluster last applied.",
    )(func)
    func = click.option(
        "--adopt",
        is_flag=True,
        help="Take over objects owned by another ApplySet, Helm or another specc cluster.",
    )(func)
    func = click.option(
        "--concurrency",
        type=click.IntRange(1, 64),
        default=8,
        show_default=True,
        help="Parallel requests within a wave.",
    )(func)
    func = click.option(
        "--prune-budget",
        type=click.FloatRange(0, 1, min_open=True),
        default=None,
        help="Largest share of the inventory one sync may prune [default: 0.25]; "
        "fleet.yaml's prune.budget can only lower it.",
    )(func)
    func = click.option(
        "--allow-mass-prune", is_flag=True, help="Prune even beyond the prune budget."
    )(func)
    func = click.option(
        "--no-prune", is_flag=True, help="Apply only; leave objects the commit no longer declares."
    )(func)
    return func


def _cluster_options(func: Any) -> Any:
    func = _sync_options(_connection_options(func))
    return click.option(
        "--cluster", "cluster_name", required=True, help="Cluster name from fleet.yaml."
    )(func)


def _open_cluster(
    root: Path, conn: Any, cluster_name: str, params: dict[str, Any]
) -> tuple[Any, Any]:
    """Return a client and the target by the connection rule; print the target line first."""
    from specc.sync import ClusterOptions
    from specc.sync.connection import ConnectionRequest, connect

    fleet_kubeconfig = None
    if conn is not None and conn.kubeconfig:
        path = Path(conn.kubeconfig).expanduser()
        fleet_kubeconfig = str(path if path.is_absolute() else root / path)
    request = ConnectionRequest(
        cluster=cluster_name,
        kubeconfig=params.get("kubeconfig"),
        context=params.get("context"),
        fleet_context=conn.context if conn is not None else None,
        fleet_in_cluster=bool(conn is not None and conn.in_cluster),
        fleet_kubeconfig=fleet_kubeconfig,
        use_fleet_kubeconfig=bool(params.get("use_fleet_kubeconfig")),
    )
    options = ClusterOptions(
        timeout=params.get("request_timeout") or 60.0,
        connect_timeout=params.get("connect_timeout") or 10.0,
        concurrency=params.get("concurrency") or 8,
    )
    cluster, target = connect(request, options)
    _announce(target)
    return cluster, target


def _announce(target: Any) -> None:
    """Print which cluster a command talks to (stderr, before any request); keep it for JSON."""
    click.echo(target.line(), err=True)
    for note in target.notes:
        click.echo(f"note: {note}", err=True)
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        ctx.meta["specc.connection"] = target.to_dict()


def _connection_json() -> dict[str, Any]:
    ctx = click.get_current_context(silent=True)
    found = ctx.meta.get("specc.connection") if ctx is not None else None
    return {"connection": found} if found else {}


def _prepare_sync(
    fleet: Path | None, cluster_name: str, params: dict[str, Any], **sync_options: Any
) -> tuple[Any, Any, Any, Any]:
    """Return the validated fleet, the cluster's checked render, a client and sync options."""
    from specc.gitinfo import descends, revision
    from specc.pipeline import compile_checked, validate_path
    from specc.sync import PlanOptions, SyncOptions

    root = resolve_fleet(fleet)
    progress = sync_options.get("progress")
    if progress is not None:
        progress.phase("render")
    try:
        valid = validate_path(root)
        valid.cluster(cluster_name)  # an unknown cluster is a usage error, before any render
        # A commit is judged whole, as `specc validate` and the agent judge it: an error
        # only in another cluster's render refuses this cluster's sync too.
        (render,) = [r for r in compile_checked(valid) if r.cluster == cluster_name]
    except KeyError as exc:
        raise UsageError(str(exc.args[0])) from None
    if progress is not None:
        progress.update(len(render.objects))
    cluster, _ = _open_cluster(root, valid.cluster(cluster_name).connection, cluster_name, params)
    if progress is not None:
        cluster.on_retry = progress.note
    plan_options = PlanOptions(
        prune=not params.get("no_prune"),
        prune_budget=valid.fleet.spec.prune.budget,
        operator_budget=params.get("prune_budget"),
        allow_mass_prune=bool(params.get("allow_mass_prune")),
        adopt=bool(params.get("adopt")),
    )
    commit = revision(root)
    options = SyncOptions(
        plan=plan_options,
        commit=commit,
        concurrency=params.get("concurrency") or 8,
        allow_cluster_mismatch=bool(params.get("allow_cluster_mismatch")),
        descends=lambda applied: descends(root, applied, commit),
        allow_rewind=bool(params.get("allow_rewind")),
        **sync_options,
    )
    return valid, render, cluster, options


def _warn(warnings: list[str]) -> None:
    for w in warnings:
        _stderr().print(f"[bold red]warning[/] {_markup_escape(w)}")


def _print_plan(result: Any, cluster_name: str, output: str) -> NoReturn:
    """Print a plan; exit 0 in sync, 1 otherwise (what `plan` and `sync --dry-run` share)."""
    from specc import report

    _warn(result.warnings)
    if output == "json":
        report.print_json({**_connection_json(), **result.to_dict()})
    else:
        for line in report.plan_lines(result):
            click.echo(line)
        for reason in result.refusals:
            click.echo(f"refused: {reason}", err=True)
        counts = ", ".join(
            f"{n} to {k}"
            for k, n in result.counts().items()
            if n and k not in ("unchanged", "refused")
        )
        refused = result.counts()["refused"]
        if refused:
            counts += f"; {refused} refused"
        status = "in sync" if result.in_sync else counts
        click.echo(f"cluster {cluster_name}: {status} ({result.counts()['unchanged']} unchanged)")
    sys.exit(0 if result.in_sync else 1)


@cli.command()
@_fleet_arg
@_cluster_options
@_OUTPUT
def plan(fleet: Path | None, cluster_name: str, output: str, **params: Any) -> None:
    """Show what a sync of FLEET would change on a cluster.

    Exit 0: in sync; 1: differences or objects a sync would refuse; 2: usage,
    connection or credential error, or the server holds another cluster or fleet.
    """
    from specc import progress as progress_
    from specc.sync import plan_cluster

    progress = progress_.for_stderr(f"plan {cluster_name}")
    try:
        _, render, cluster, options = _prepare_sync(fleet, cluster_name, params, progress=progress)
        result, _, _ = plan_cluster(cluster, render, options)
    except SpeccError as exc:
        progress.close()
        _exit(exc, output)
    progress.close()
    _print_plan(result, cluster_name, output)


@cli.command()
@_fleet_arg
@_cluster_options
@click.option(
    "--dry-run", is_flag=True, help="Plan only: print and exit exactly as `specc plan` does."
)
@click.option(
    "--no-force",
    is_flag=True,
    help="Fail on fields owned by other managers instead of taking them.",
)
@click.option(
    "--once", is_flag=True, help="Sync once and exit (what `sync` always does; the agent loops)."
)
@click.option("--wait", is_flag=True, help="After applying, wait until every object is healthy.")
@click.option(
    "--timeout", type=float, default=300.0, show_default=True, help="Seconds --wait waits."
)
@_OUTPUT
def sync(
    fleet: Path | None,
    cluster_name: str,
    dry_run: bool,
    no_force: bool,
    once: bool,
    wait: bool,
    timeout: float,
    output: str,
    **params: Any,
) -> None:
    """Make a cluster hold what FLEET declares: apply in waves, then prune safely.

    Exit 0: converged; 1: objects failed or refused, or the sync was refused; 2: usage,
    connection or credential error, or the server holds another cluster or fleet.
    """
    from specc import progress as progress_
    from specc import report
    from specc.sync import plan_cluster
    from specc.sync import sync as run_sync
    from specc.sync.health import Wait, wait_healthy

    progress = progress_.for_stderr(f"sync {cluster_name}")
    waited = Wait([], False, 0.0)
    try:
        _, render, cluster, options = _prepare_sync(
            fleet, cluster_name, params, force=not no_force, progress=progress
        )
        if dry_run:
            planned, _, _ = plan_cluster(cluster, render, options)
        else:
            result = run_sync(cluster, render, options)
            if wait and result.ok:
                waited = wait_healthy(cluster, render.objects, timeout, progress=progress)
    except SpeccError as exc:
        progress.close()
        _exit(exc, output)
    progress.close()
    if dry_run:
        _print_plan(planned, cluster_name, output)
    _warn(result.plan.warnings)
    healths = waited.healths
    unhealthy = [h for h in healths if h.status != "Current"]
    if output == "json":
        data = {**_connection_json(), **result.to_dict()}
        if wait:
            data["health"] = [
                {"object": str(h.key), "status": h.status, "message": h.message} for h in healths
            ]
            data["wait"] = {
                "timedOut": waited.timed_out,
                "seconds": round(waited.elapsed, 3),
                "timeout": timeout,
                "pending": [str(h.key) for h in waited.pending],
            }
        report.print_json(data)
    else:
        report.print_sync(result)
        for h in unhealthy:
            click.echo(f"{h.key}: {h.status} {h.message}".rstrip(), err=True)
        if waited.timed_out:
            pending = waited.pending
            click.echo(
                f"error: --wait timed out after {waited.elapsed:.1f} s (--timeout {timeout:g}): "
                f"{len(pending)} of {len(healths)} objects not healthy: "
                + "; ".join(f"{h.key} ({h.message})" for h in pending),
                err=True,
            )
        elif wait and not unhealthy and result.ok:
            click.echo(f"all {len(healths)} objects healthy")
    sys.exit(0 if result.ok and not unhealthy else 1)


def _connect_agent(cluster_name: str, params: dict[str, Any]) -> Any:
    """Return the agent's client: its flags and environment only, never the commit's settings.

    The rule is the CLI's with no fleet to ask: --kubeconfig/--context, else KUBECONFIG,
    else the in-cluster config in a pod, else ~/.kube/config; a context must be named
    unless the file has only one.
    """
    from specc.sync import ClusterOptions
    from specc.sync.connection import ConnectionRequest, connect

    request = ConnectionRequest(
        cluster=cluster_name,
        kubeconfig=params.get("kubeconfig"),
        context=params.get("context"),
        fleet_in_cluster=True,
    )
    options = ClusterOptions(
        timeout=params.get("request_timeout") or 60.0,
        connect_timeout=params.get("connect_timeout") or 10.0,
    )
    cluster, target = connect(request, options)
    _announce(target)
    return cluster


@cli.command()
@click.option(
    "--repo", required=True, envvar="SPECC_REPO", help="Repository URL or local path to follow."
)
@click.option("--branch", default="main", show_default=True)
@click.option(
    "--cluster",
    "cluster_name",
    required=True,
    envvar="SPECC_CLUSTER",
    help="Cluster name from fleet.yaml.",
)
@click.option(
    "--fleet-path", default="fleet", show_default=True, help="The fleet's folder in the repository."
)
@click.option(
    "--kubeconfig",
    type=click.Path(),
    help="Kubeconfig (default: KUBECONFIG, else the in-cluster config, else ~/.kube/config).",
)
@click.option("--context", help="Kubeconfig context (needed when the file has several).")
@click.option(
    "--connect-timeout",
    type=click.FloatRange(min=0.1),
    default=10.0,
    show_default=True,
    help="Seconds to connect, and to wait for the server's first answer.",
)
@click.option(
    "--request-timeout",
    type=click.FloatRange(min=0.1),
    default=60.0,
    show_default=True,
    help="Seconds one request waits for its answer.",
)
@click.option(
    "--interval", type=float, default=60.0, show_default=True, help="Seconds between fetches."
)
@click.option(
    "--resync",
    type=float,
    default=600.0,
    show_default=True,
    help="Seconds between full resyncs (a backstop: the watches heal drift within seconds).",
)
@click.option(
    "--no-watch", is_flag=True, help="Do not watch the inventory; heal only at resyncs (polling)."
)
@click.option("--no-self-heal", is_flag=True, help="Report drift only; do not undo it.")
@click.option(
    "--allow-rewind",
    is_flag=True,
    help="Apply a commit that does not descend from the applied one.",
)
@click.option(
    "--verify-signatures", is_flag=True, help="Apply only commits `git verify-commit` accepts."
)
@click.option("--keyring", type=click.Path(), help="GNUPGHOME with the trusted keys.")
@click.option("--token-file", type=click.Path(), help="File holding an HTTPS token.")
@click.option("--token-env", metavar="NAME", help="Environment variable holding an HTTPS token.")
@click.option("--ssh-key", type=click.Path(), help="SSH private key file.")
@click.option(
    "--webhook-secret-file", type=click.Path(), help="Shared secret for POST /hook (HMAC-SHA256)."
)
@click.option(
    "--listen",
    default="0.0.0.0:8080",
    show_default=True,
    callback=lambda _ctx, _param, value: _listen_address(value),
    help="HOST:PORT of /metrics, /healthz, /readyz, /hook (:PORT for all addresses, "
    "[::1]:PORT for IPv6).",
)
@click.option(
    "--workdir",
    type=click.Path(path_type=Path, file_okay=False),
    envvar="SPECC_WORKDIR",
    default=None,
    help="Where the agent keeps its mirror of the repository "
    "[default: $XDG_CACHE_HOME/specc/agent, else ~/.cache/specc/agent].",
)
@click.option(
    "--no-leader-election", is_flag=True, help="Act without holding the Lease (one replica only)."
)
@click.option("--lease-duration", type=float, default=15.0, show_default=True)
@click.option("--allow-mass-prune", is_flag=True)
@click.option(
    "--prune-budget",
    type=click.FloatRange(0, 1, min_open=True),
    default=None,
    help="Largest share of the inventory one sync may prune [default: 0.25]; "
    "a commit's prune.budget can only lower it.",
)
def agent(
    repo: str,
    branch: str,
    cluster_name: str,
    fleet_path: str,
    kubeconfig: str | None,
    context: str | None,
    connect_timeout: float,
    request_timeout: float,
    interval: float,
    resync: float,
    no_watch: bool,
    no_self_heal: bool,
    allow_rewind: bool,
    verify_signatures: bool,
    keyring: str | None,
    token_file: str | None,
    token_env: str | None,
    ssh_key: str | None,
    webhook_secret_file: str | None,
    listen: tuple[str, int],
    workdir: Path | None,
    no_leader_election: bool,
    lease_duration: float,
    allow_mass_prune: bool,
    prune_budget: float | None,
) -> None:
    """Keep a cluster equal to the newest good commit of BRANCH (runs until SIGTERM)."""
    from specc import logs
    from specc.agent import Agent, AgentOptions
    from specc.source import GitSourceOptions, default_workdir
    from specc.sync import PlanOptions, SyncOptions

    workdir = workdir or default_workdir()
    secret = None
    try:
        if webhook_secret_file:
            secret = Path(webhook_secret_file).read_bytes().strip()
        options = AgentOptions(
            source=GitSourceOptions(
                url=repo,
                branch=branch,
                workdir=workdir / "repo",
                token_file=token_file,
                token_env=token_env,
                ssh_key_file=ssh_key,
                keyring=keyring,
            ),
            cluster=cluster_name,
            fleet_path=fleet_path,
            interval=interval,
            resync=resync,
            watch=not no_watch,
            self_heal=not no_self_heal,
            allow_rewind=allow_rewind,
            verify_signatures=verify_signatures,
            webhook_secret=secret,
            listen=listen,
            leader_election=not no_leader_election,
            lease_duration=lease_duration,
            sync=SyncOptions(
                plan=PlanOptions(allow_mass_prune=allow_mass_prune, operator_budget=prune_budget)
            ),
        )
        cluster = _connect_agent(
            cluster_name,
            {
                "kubeconfig": kubeconfig,
                "context": context,
                "connect_timeout": connect_timeout,
                "request_timeout": request_timeout,
            },
        )
        runner = Agent(options, cluster, logger=logs.setup())
    except (OSError, ValueError) as exc:
        _exit(UsageError(str(exc)))
    except SpeccError as exc:
        _exit(exc)
    try:
        runner.serve()  # before any write: a busy port or unknown address is exit 2
    except SpeccError as exc:
        _exit(exc)
    gc.enable()
    _run_until_stopped(runner)


def _run_until_stopped(runner: Agent) -> None:
    """Run the agent's loop on a thread of its own until SIGTERM or SIGINT stops it.

    A Python signal handler runs on the main thread between two of its bytecodes, and
    ``stop.set()`` takes the lock of the event the loop waits on. With the loop on the
    main thread, a signal landing while the loop held that lock would deadlock the agent
    (killed at the end of the pod's grace period, its lease held); here the main thread
    holds no lock of the agent's, only waits for the loop.
    """
    import signal
    import threading

    failed: list[BaseException] = []

    def loop() -> None:
        try:
            runner.run()
        except BaseException as exc:  # raised again below, where exit codes are made
            failed.append(exc)

    worker = threading.Thread(target=loop, name="specc-agent-loop")
    signal.signal(signal.SIGTERM, lambda *_: runner.stop.set())
    signal.signal(signal.SIGINT, lambda *_: runner.stop.set())
    worker.start()
    while worker.is_alive():
        worker.join(0.5)
    if failed:
        raise failed[0]


def _listen_address(value: str) -> tuple[str, int]:
    """Return (host, port) of ``HOST:PORT``, ``:PORT`` or ``[IPV6]:PORT``; raise BadParameter."""
    host, sep, port = value.strip().rpartition(":")
    bracketed = host.startswith("[") and host.endswith("]")
    if bracketed:
        host = host[1:-1]
    if not sep or not port.isdigit() or int(port) > 65535 or (":" in host and not bracketed):
        raise click.BadParameter(
            f"{value!r} is not HOST:PORT (e.g. 0.0.0.0:8080, :8080, 127.0.0.1:9090, [::1]:8080)"
        )
    return host or "0.0.0.0", int(port)


@cli.command()
@_fleet_arg
@click.option("--cluster", "cluster_name", required=True, help="Cluster name from fleet.yaml.")
@_connection_options
@_OUTPUT
def status(fleet: Path | None, cluster_name: str, output: str, **params: Any) -> None:
    """Print what the cluster's inventory records: last applied revision, result, last error.

    Reads only fleet.yaml of FLEET (for the connection). Exit 0: the last sync applied;
    1: it failed, or the cluster was never synced; 2: usage, connection or credential
    error, or the server holds another cluster or fleet.
    """
    from specc import report
    from specc.pipeline import validate_fleet_file
    from specc.sync.apply import CONTENT_KEY, check_identity, list_parents
    from specc.sync.inventory import ApplySetParent

    try:
        root = resolve_fleet(fleet)
        model = validate_fleet_file(root)
        spec = next((c for c in model.spec.clusters if c.name == cluster_name), None)
        if spec is None:
            known = ", ".join(c.name for c in model.spec.clusters)
            raise UsageError(f"no cluster {cluster_name!r} in fleet.yaml (clusters: {known})")
        cluster, _ = _open_cluster(root, spec.connection, cluster_name, params)
        parent = ApplySetParent.for_cluster(cluster_name, model.metadata.name)
        parents = list_parents(cluster)
        check_identity(cluster, parent, parents, allow=False)
        live = next((p for p in parents if p["metadata"].get("name") == parent.name), None)
    except SpeccError as exc:
        _exit(exc, output)
    data: dict[str, str] = dict((live or {}).get("data") or {})
    if output == "json":
        report.print_json(
            {"cluster": cluster_name, **_connection_json(), **report.status_json(data)}
        )
    elif not data:
        click.echo(f"cluster {cluster_name}: never synced by specc")
    else:
        for key in sorted(data):
            click.echo(f"{key}: {data[key]}")
        applied = data.get("lastAppliedCommit", "")
        if applied.endswith("-dirty"):
            click.echo(
                f"note: {applied} is commit {applied[: -len('-dirty')]} with uncommitted "
                f"changes; what was applied is identified by {CONTENT_KEY} "
                f"{data.get(CONTENT_KEY, '(not recorded)')}"
            )
    sys.exit(0 if data.get("lastResult") == "applied" else 1)


@cli.command()
@_fleet_arg
@click.option("--name", default="specc-agent", show_default=True, help="Name of the ClusterRole.")
@click.option(
    "--output",
    "-o",
    type=click.Choice(["yaml", "json"]),
    default="yaml",
    show_default=True,
    help="Print the ClusterRole as YAML or JSON (errors too, with json).",
)
@click.option(
    "--cluster",
    "clusters",
    multiple=True,
    help="Only what this cluster renders (repeatable; default: every cluster).",
)
def rbac(fleet: Path | None, name: str, output: str, clusters: tuple[str, ...]) -> None:
    """Print the least-privilege ClusterRole the agent needs to sync every cluster of FLEET."""
    from specc.compile import fleet_crds
    from specc.pipeline import render_path
    from specc.rbac import agent_cluster_role
    from specc.write import to_yaml

    try:
        valid, renders = render_path(resolve_fleet(fleet), list(clusters) or None)
    except SpeccError as exc:
        _exit(exc, "json" if output == "json" else "text")
    role = agent_cluster_role(renders, fleet_crds(valid), name)
    if output == "json":
        from specc import report

        report.print_json(role)
    else:
        click.echo(to_yaml(role), nl=False)


@cli.command()
@click.option("--out", "out", type=click.Path(path_type=Path), help="Write the schemas here.")
@click.option(
    "--check",
    "check",
    type=click.Path(path_type=Path),
    help="Exit 1 if the schemas in this directory are missing or stale.",
)
@_OUTPUT
def schema(out: Path | None, check: Path | None, output: str) -> None:
    """Write JSON Schemas of the fleet kinds (for editors and CI), or check they are fresh."""
    from specc import report, schemas

    if (out is None) == (check is None):
        _exit(UsageError("give exactly one of --out DIR and --check DIR"), output)
    if out is not None:
        written = schemas.write_schemas(out)
        if output == "json":
            report.print_json({"ok": True, "written": [p.as_posix() for p in written]})
        else:
            click.echo(f"wrote {len(written)} schemas to {out}")
        return
    assert check is not None
    stale = schemas.stale_schemas(check)
    if output == "json":
        report.print_json({"ok": not stale, "stale": [(check / name).as_posix() for name in stale]})
    else:
        for name in stale:
            click.echo(
                f"{check / name}: error: stale or missing; run `specc schema --out {check}`",
                err=True,
            )
        if not stale:
            click.echo(f"schemas in {check} are up to date")
    sys.exit(1 if stale else 0)


@cli.command()
@_OUTPUT
def version(output: str) -> None:
    """Print specc's version, the distribution it came from and what it runs on."""
    import platform

    from specc import report

    info = report.version_info()
    if output == "json":
        report.print_json(info)
        return
    click.echo(
        f"specc {info['version']} ({info['distribution']}), Python {info['python']} "
        f"on {platform.system().lower()}; checks Kubernetes "
        f"{info['kubernetesVersions'][0]}–{info['kubernetesVersions'][-1]}"
    )


@cli.command()
@_fleet_arg
@click.option("--base", default=None, help="Revision to compare with (branch, tag, commit).")
@click.option("--head", default=None, help="Revision with the change [default: working tree].")
@click.option(
    "--cluster",
    "cluster_name",
    default=None,
    help="Compare with this live cluster instead of --base.",
)
@_connection_options
@click.option(
    "--output",
    "-o",
    type=click.Choice(["text", "json", "markdown"]),
    default="text",
    show_default=True,
    help="json for machines, markdown for a pull-request comment.",
)
def diff(
    fleet: Path | None,
    base: str | None,
    head: str | None,
    cluster_name: str | None,
    output: str,
    **params: Any,
) -> None:
    """Show what a change does to each cluster: objects added, removed and changed.

    Renders FLEET at --base and at --head (default: the working tree as it is) without
    touching the working tree, and compares them per cluster, field by field. Exit 0:
    no changes; 1: changes, or the fleet at --head does not render; 2: usage or git
    error. A base that does not render counts as empty (everything at the head is
    added), with a note listing its errors. With --cluster instead of --base,
    compares the live cluster with the working tree (exit 2 also for connection,
    credential and identity errors).
    """
    from specc import diffreport
    from specc.diff import DEFAULT_PRUNE_BUDGET, DiffOptions, diff_renders
    from specc.errors import GitError
    from specc.gitrev import render_sides

    def fail(exc: SpeccError, side: str) -> NoReturn:
        # A git problem (unknown revision, not a repository) is an error of the
        # invocation: 2. A broken head is a finding: 1.
        code = 2 if isinstance(exc, GitError) else exc.exit_code
        if output == "markdown":
            from specc import report

            findings = exc.findings if isinstance(exc, FleetError) else []
            # A pull-request comment names files as the repository holds them.
            lines = report.finding_lines(findings, _fleet_root(), in_repository=True)
            click.echo(diffreport.error_markdown(side, str(exc).splitlines()[0], lines))
        elif output == "json" and isinstance(exc, FleetError):
            from specc import report

            report.print_json({"ok": False, "side": side, **report_findings(exc)})
        else:
            report_error(exc, "json" if output == "json" else "text")
        sys.exit(code)

    if (base is None) == (cluster_name is None):
        _exit(
            UsageError(
                "give --base REV to compare revisions, or --cluster NAME to compare with a live cluster"
            )
        )
    if cluster_name is not None:
        _diff_live(fleet, cluster_name, params, output)
    assert base is not None
    from specc import progress as progress_

    root = resolve_fleet(fleet)
    progress = progress_.for_stderr("diff")
    progress.phase(f"render {base} and {head or 'the working tree'}")
    try:
        before, after = render_sides(root, base, head)
    except SpeccError as exc:
        progress.close()
        fail(exc, "base" if isinstance(exc, GitError) else "head")
    from specc import report

    budget = after.prune_budget or before.prune_budget or DEFAULT_PRUNE_BUDGET
    progress.phase("compare")
    result = diff_renders(before.renders, after.renders, DiffOptions(prune_budget=budget))
    progress.close()
    # A base that does not render (a broken main) is empty: the change that fixes it
    # shows everything as added, with a note naming the base's errors, and can pass.
    sides = (
        diffreport.Side(
            before.revision.rev,
            before.revision.commit,
            tuple(report.finding_lines(before.errors, root, in_repository=output == "markdown")),
            tuple(report.findings_json(before.errors, root)),
        ),
        diffreport.Side(after.revision.rev, after.revision.commit),
    )
    _print_diff(result, sides, output)


def _print_diff(result: Any, sides: tuple[Any, Any], output: str) -> NoReturn:
    """Print a FleetDiff as text, JSON or markdown; exit 1 if anything changes."""
    from specc import diffreport

    if output == "json":
        from specc import report

        # Against a live cluster the document also says which one (the connection rule).
        report.print_json({**_connection_json(), **diffreport.diff_json(result, *sides)})
    elif output == "markdown":
        click.echo(diffreport.diff_markdown(result, *sides), nl=False)
    else:
        from rich.console import Console
        from rich.text import Text

        console = Console(highlight=False, soft_wrap=True)
        for style, line in diffreport.diff_text(result, *sides):
            console.print(Text(line, style=style))
    sys.exit(1 if result.has_changes else 0)


def _diff_live(
    fleet: Path | None, cluster_name: str, params: dict[str, Any], output: str
) -> NoReturn:
    """Compare the live cluster with the working tree's render, in the view of a PR diff."""
    from specc import diffreport
    from specc import progress as progress_
    from specc.diff import DiffOptions, FleetDiff, diff_cluster
    from specc.sync import plan_cluster
    from specc.sync.liveview import live_objects

    progress = progress_.for_stderr(f"diff {cluster_name}")
    try:
        valid, render, cluster, options = _prepare_sync(
            fleet, cluster_name, params, progress=progress
        )
        plan, _, _ = plan_cluster(cluster, render, options)
    except SpeccError as exc:
        progress.close()
        _exit(exc, "json" if output == "json" else "text")
    progress.close()
    from specc.sync.inventory import ApplySetParent, with_membership

    _warn(plan.warnings)
    desired = with_membership(
        render.objects, ApplySetParent.for_cluster(cluster_name, render.fleet)
    )
    budget = valid.fleet.spec.prune.budget
    one = diff_cluster(cluster_name, live_objects(plan), desired, DiffOptions(prune_budget=budget))
    result = FleetDiff([one], budget)
    sides = (diffreport.Side(f"cluster {cluster_name}"), diffreport.Side("working tree"))
    _print_diff(result, sides, output)


def _exit(exc: SpeccError, output: str = "text") -> NoReturn:
    report_error(exc, output)
    sys.exit(exc.exit_code)


def main() -> None:
    """Entry point of the `specc` console script: runs one command and ends the process
    (in-process callers use :data:`cli`)."""
    # Commands run once and exit; the cyclic garbage collector scanning tens of thousands
    # of live spec and object dicts cost 40-50 % of validate and compile. The agent, which
    # runs for weeks, turns it back on.
    gc.disable()
    # pydantic looks for plugins in every installed distribution's entry points (~15 ms a
    # start); specc's models use none. A user who wants one can still set the variable.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    try:
        _main()
    except SystemExit as exc:
        _end_process(exc)
        raise


def _end_process(exc: SystemExit) -> None:
    """End the process now with ``exc``'s exit code, skipping the interpreter's teardown.

    Tearing down frees every module and object one by one and runs a full collection:
    ~15 % of a ``specc validate`` of the example fleet, for nothing a finished command
    needs. What a normal exit does that matters still happens here: the exit handlers
    run and the output is flushed. Where that is not certain (a thread that a normal exit
    would wait for is alive; an exit message; output that cannot be flushed), this
    returns and the normal exit follows.
    """
    import atexit
    import threading

    code = 0 if exc.code is None else exc.code
    run_exit_handlers = getattr(atexit, "_run_exitfuncs", None)
    main_thread = threading.main_thread()
    waited_for = [t for t in threading.enumerate() if t is not main_thread and not t.daemon]
    if not isinstance(code, int) or run_exit_handlers is None or waited_for:
        return
    run_exit_handlers()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):  # a closed pipe or stream: the normal exit reports it
        return
    os._exit(code)


def _main() -> None:
    try:
        cli.main(standalone_mode=True)
    except SpeccError as exc:  # the one place errors become exit codes
        _exit(exc)
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] not in ("kubernetes", "prometheus_client"):
            raise
        from specc import DISTRIBUTION

        _exit(
            UsageError(
                "this command talks to a cluster and needs the Kubernetes client: "
                f"pip install '{DISTRIBUTION}[cluster]'"
            )
        )
