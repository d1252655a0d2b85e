"""The write stage as an artifact other tools consume, and as a target a hostile commit
aims at: names become paths, links in the output folder, indexes that lie."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from specc.errors import Position, WriteError
from specc.objects import ClusterRender, DesiredObject
from specc.testing import ApiServer
from specc.write import HEADER, MAX_NAME_BYTES, safe_name, write_render
from tests.render_helpers import EXAMPLE_FLEET


def configmap(
    name: str, namespace: str | None = "team-a", kind: str = "ConfigMap"
) -> DesiredObject:
    meta: dict[str, str] = {"name": name}
    if namespace is not None:
        meta["namespace"] = namespace
    body = {"apiVersion": "v1", "kind": kind, "metadata": meta, "data": {"a": "1"}}
    return DesiredObject(body, Position("apps/a.yaml", 3), "Manifests/team-a/a")


def files_under(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


@pytest.mark.parametrize(
    "name",
    [
        "../../../../../escaped/PWNED",
        "/etc/PWNED",
        "a/../../PWNED",
        "..",
        ".",
        "with space",
        "ünïcode",
        "nul\x00byte",
        "back\\slash",
    ],
)
def test_a_name_that_is_a_path_is_written_inside_its_cluster_folder(
    tmp_path: Path, name: str
) -> None:
    out = tmp_path / "deep/er/out"
    render = ClusterRender("c", "1.33", [configmap(name), configmap("x", namespace=name)])
    write_render(render, out)
    written = files_under(tmp_path)
    assert len(written) == 3  # two objects and the index
    for rel in written:
        assert rel.startswith("deep/er/out/"), rel
    assert [p for p in written if p.startswith("deep/er/out/c/")] == sorted(
        p for p in written if p != "deep/er/out/c.index.json"
    )
    assert not (tmp_path / "escaped").exists() and not Path("/etc/PWNED").exists()


def test_a_long_valid_name_gets_a_short_deterministic_file_name(tmp_path: Path) -> None:
    long_a = "a" * 253
    long_b = "a" * 252 + "b"  # same readable prefix: the hash keeps them apart
    render = ClusterRender("c", "1.33", [configmap(long_a), configmap(long_b)])
    write_render(render, tmp_path / "one")
    write_render(render, tmp_path / "two")
    names = sorted(p.name for p in (tmp_path / "one/c/team-a").iterdir())
    assert len(names) == 2
    assert all(len(n.encode()) <= MAX_NAME_BYTES and n.endswith(".yaml") for n in names)
    assert names == sorted(p.name for p in (tmp_path / "two/c/team-a").iterdir())
    assert safe_name(f"configmap-{long_a}", ".yaml") in names


def test_short_plain_names_stay_readable() -> None:
    assert safe_name("deployment-web", ".yaml") == "deployment-web.yaml"
    assert safe_name("customresourcedefinition-etcdclusters.etcd.database.coreos.com", ".yaml") == (
        "customresourcedefinition-etcdclusters.etcd.database.coreos.com.yaml"
    )
    assert safe_name("clusterrole-system:aggregate", ".yaml").startswith(
        "clusterrole-system_aggregate-"
    )


def test_a_link_in_the_output_folder_leading_out_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    out = tmp_path / "out"
    (out / "c").mkdir(parents=True)
    (out / "c/team-a").symlink_to(outside)
    with pytest.raises(WriteError, match="refusing to write outside"):
        write_render(ClusterRender("c", "1.33", [configmap("x")]), out)
    assert list(outside.iterdir()) == []


def test_a_linked_file_is_replaced_not_written_through(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    out = tmp_path / "out"
    (out / "c/team-a").mkdir(parents=True)
    (out / "c/team-a/configmap-x.yaml").symlink_to(victim)
    (out / "c.index.json").write_text('{"objects": [{"file": "c/team-a/configmap-x.yaml"}]}')
    write_render(ClusterRender("c", "1.33", [configmap("x")]), out)
    assert victim.read_text() == "precious\n"
    assert not (out / "c/team-a/configmap-x.yaml").is_symlink()


def test_an_index_naming_files_outside_removes_nothing_there(tmp_path: Path) -> None:
    victim = tmp_path / "victim.yaml"
    victim.write_text(HEADER + "kind: ConfigMap\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "c.index.json").write_text('{"objects": [{"file": "../victim.yaml"}]}')
    write_render(ClusterRender("c", "1.33", [configmap("x")]), out)
    assert victim.is_file()


def test_a_file_listed_by_the_index_but_no_longer_ours_is_kept(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_render(ClusterRender("c", "1.33", [configmap("x"), configmap("y")]), out)
    taken = out / "c/team-a/configmap-y.yaml"
    taken.write_text("# mine now\nkind: ConfigMap\n")
    result = write_render(ClusterRender("c", "1.33", [configmap("x")]), out)
    assert result.removed == 0 and taken.is_file()


@pytest.mark.kubectl
@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not on PATH")
def test_kubectl_apply_recursive_reads_every_rendered_file_of_a_cluster(
    tmp_path: Path, apiserver: ApiServer
) -> None:
    from click.testing import CliRunner

    from specc.cli import cli
    from specc.compile.monitoring import operator_crds
    from specc.write import to_yaml

    out = tmp_path / "rendered"
    result = CliRunner().invoke(cli, ["render", str(EXAMPLE_FLEET), "--out", str(out)])
    assert result.exit_code == 0, result.output
    env = {**os.environ, "KUBECONFIG": str(apiserver.kubeconfig_path)}
    # The custom resources' kinds must be known to map them, even in a client dry run.
    crds = tmp_path / "crds"
    crds.mkdir()
    for i, crd in enumerate(operator_crds()):
        (crds / f"{i}.yaml").write_text(to_yaml(crd))
    for path in sorted((out / "dev/_cluster").glob("customresourcedefinition-*.yaml")):
        shutil.copy(path, crds / path.name)
    subprocess.run(
        ["kubectl", "apply", "--server-side", "-f", str(crds)],
        env=env,
        check=True,
        capture_output=True,
    )
    done = subprocess.run(
        ["kubectl", "apply", "-R", "--dry-run=client", "-f", str(out / "dev")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    applied = [line for line in done.stdout.splitlines() if line.endswith("(dry run)")]
    assert len(applied) == len(files_under(out / "dev"))


def test_render_of_a_hostile_manifest_name_writes_nothing_outside_out(
    fleet: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from specc.cli import cli
    from tests.helpers import write

    write(
        fleet,
        "apps/platform/hostile.yaml",
        "apiVersion: specc.dev/v1alpha1\nkind: Manifests\nmetadata: {name: hostile, team: platform}\n"
        "spec:\n  objects:\n    - apiVersion: v1\n      kind: ConfigMap\n"
        "      metadata: {name: ../../../../../escaped/PWNED}\n      data: {a: '1'}\n",
    )
    work = fleet.parent
    monkeypatch.chdir(work)
    before = set(files_under(work))
    result = CliRunner().invoke(cli, ["render", "fleet", "--out", "a/b/out"])
    # Refused by validation (a name the API server refuses), or written inside out/.
    assert result.exit_code in (0, 1), result.output
    new = set(files_under(work)) - before
    assert all(p.startswith("a/b/out/") for p in new), sorted(new)
    assert not (work / "escaped").exists() and not (work / "a/escaped").exists()
