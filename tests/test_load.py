"""The load stage: positions, multi-document files and every refusal."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from specc import load
from specc.errors import LoadError, Position
from specc.load import load_fleet, parse_text, read_text, resolve_reference
from tests.helpers import FLEET, app_count, write

BILLION_LAUGHS = """\
a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
"""


def messages(text: str) -> list[str]:
    return [str(f) for f in parse_text(text, "x.yaml")[1]]


def test_keys_and_values_keep_their_line_and_column() -> None:
    (doc,), problems = parse_text("a:\n  b: 1\n  c: [x, {d: y}]\n", "f.yaml")
    assert problems == []
    assert doc.source.key(("a", "b")) == Position("f.yaml", 2, 3)
    assert doc.source.value(("a", "b")) == Position("f.yaml", 2, 6)
    assert doc.source.value(("a", "c", 1, "d")) == Position("f.yaml", 3, 14)
    assert doc.source.key(("a", "c", 1, "d")) == Position("f.yaml", 3, 11)


def test_a_missing_path_falls_back_to_its_nearest_ancestor() -> None:
    (doc,), _ = parse_text("a:\n  b: 1\n", "f.yaml")
    assert doc.source.value(("a", "nothere", 3)) == Position("f.yaml", 2, 3)


def test_a_multi_document_file_yields_each_document_with_its_index() -> None:
    docs, problems = parse_text("---\na: 1\n---\n---\nb: 2\n", "f.yaml")
    assert problems == []
    assert [(d.index, d.data) for d in docs] == [(0, {"a": 1}), (2, {"b": 2})]
    assert docs[1].source.value(("b",)) == Position("f.yaml", 5, 4)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("k: on", "on"),  # YAML 1.2 core (kubectl's YAML 1.1 reads true; README, Values)
        ("on: x", "x"),  # but keys stay the string written
        ("k: 80", 80),
        ("k: 0.5", 0.5),
        ("k: true", True),
        ("k: ~", None),
        ("k: 2026-11-22", "2026-11-22"),
        ("80: x", "x"),
    ],
)
def test_scalars_become_what_kubernetes_expects(text: str, value: object) -> None:
    (doc,), _ = parse_text(text, "f.yaml")
    assert list(doc.data.values()) == [value]
    assert all(isinstance(k, str) for k in doc.data)


def test_duplicate_key_is_refused_naming_both_lines() -> None:
    assert messages("a: 1\nb: 2\na: 3\n") == [
        "x.yaml:3:1: duplicate key 'a' (first defined at line 1)"
    ]


def test_billion_laughs_is_refused_quickly() -> None:
    (msg,) = messages(BILLION_LAUGHS)
    assert "expands to more than" in msg and "YAML bomb" in msg


def test_recursive_alias_is_refused() -> None:
    (msg,) = messages("a: &a [*a]\n")
    assert "nesting deeper than" in msg


@pytest.mark.parametrize(
    "text",
    [
        "a:\n" + "".join(" " * i + "b:\n" for i in range(1, 80)) + " " * 80 + "c",
        "[" * 100 + "]" * 100,
        # Past libyaml 0.2.6's own limit of 1,000 levels but under specc's cheap bound.
        "[" * 700 + "]" * 700,
        "[" * 1_500 + "]" * 1_500,
        # Deep enough to crash libyaml's recursive composer if it ever saw it.
        "[" * 100_000 + "]" * 100_000,
        "- " * 100_000 + "x",
    ],
    ids=["block", "flow", "flow-700", "flow-1500", "flow-100k", "compact-sequences-100k"],
)
def test_nesting_deeper_than_the_limit_is_refused(text: str) -> None:
    (msg,) = messages(text)
    assert f"nesting deeper than {load.MAX_DEPTH} levels" in msg


def test_nesting_at_the_limit_is_accepted() -> None:
    docs, problems = parse_text("[" * load.MAX_DEPTH + "]" * load.MAX_DEPTH, "x.yaml")
    assert problems == [] and len(docs) == 1


def test_merge_keys_are_refused() -> None:
    assert messages("base: &b {x: 1}\nother:\n  <<: *b\n  y: 2\n") == [
        "x.yaml:3:3: merge keys (<<) are not supported"
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: !!python/object:os.system x\n", "unsupported YAML tag"),
        ("a: !!binary aGk=\n", "unsupported YAML tag"),
        ("? [a, b]\n: 1\n", "mapping keys must be plain scalars"),
        ("a: [1, 2\n", "invalid YAML"),
    ],
)
def test_unsafe_or_broken_yaml_is_refused(text: str, expected: str) -> None:
    (msg,) = messages(text)
    assert expected in msg


def test_invalid_yaml_names_line_and_column() -> None:
    (finding,) = parse_text("a: 1\nb: [x\nc: 2\n", "x.yaml")[1]
    assert finding.position.line >= 2 and finding.position.column > 0


def test_oversized_file_is_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_bytes(b"#" * (load.MAX_FILE_BYTES + 1))
    with pytest.raises(LoadError, match="over the 4194304 limit"):
        read_text(tmp_path, path)


def test_non_utf8_file_is_refused_with_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("a: 1\nname: caf\xe9\n".encode("latin-1"))
    with pytest.raises(LoadError) as info:
        read_text(tmp_path, path)
    (finding,) = info.value.findings
    assert str(finding) == "latin1.yaml:2:10: file is not valid UTF-8"


def test_symlinked_file_leaving_the_root_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "fleet"
    write(root, "fleet.yaml", (FLEET / "fleet.yaml").read_text())
    outside = write(tmp_path, "outside/team.yaml", "kind: Team\n")
    (root / "teams").mkdir()
    os.symlink(outside, root / "teams" / "evil.yaml")
    fleet = load_fleet(root)
    assert fleet.teams == []
    assert [str(f) for f in fleet.findings] == [
        "teams/evil.yaml: file leaves the fleet root (symlink?)"
    ]


def test_symlinked_folder_leaving_the_root_is_reported_and_not_read(tmp_path: Path) -> None:
    root = tmp_path / "fleet"
    write(root, "fleet.yaml", (FLEET / "fleet.yaml").read_text())
    write(tmp_path, "outside/app.yaml", "kind: Service\n")
    (root / "apps").mkdir()
    os.symlink(tmp_path / "outside", root / "apps" / "elsewhere")
    os.symlink(root, root / "apps" / "loop")  # inside the root: skipped, no loop
    fleet = load_fleet(root)
    assert fleet.apps == []
    assert [str(f) for f in fleet.findings] == [
        "apps/elsewhere: folder leaves the fleet root (symlink); it is not read"
    ]


@pytest.mark.parametrize(
    ("ref", "reason"),
    [
        ("../../etc/passwd", "leaves the fleet root"),
        ("../../../../../../etc/passwd", "leaves the fleet root"),
        ("/etc/passwd", "not absolute"),
    ],
)
def test_references_leaving_the_root_are_refused(tmp_path: Path, ref: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        resolve_reference(tmp_path, "apps/web.yaml", ref)


def test_reference_through_a_symlink_leaving_the_root_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "fleet"
    (root / "config").mkdir(parents=True)
    os.symlink("/etc/passwd", root / "config" / "passwd")
    with pytest.raises(ValueError, match="leaves the fleet root"):
        resolve_reference(root, "apps/web.yaml", "../config/passwd")


def test_reference_inside_the_root_resolves_from_the_referring_file(tmp_path: Path) -> None:
    path = resolve_reference(tmp_path, "apps/shop/web.yaml", "../../config/nginx.conf")
    assert path.resolve() == (tmp_path / "config" / "nginx.conf").resolve()


def test_the_example_fleet_loads_every_file_without_problems() -> None:
    fleet = load_fleet(FLEET)
    assert fleet.findings == []
    assert [d.kind for d in fleet.fleet] == ["Fleet"]
    assert len(fleet.teams) == 3 and len(fleet.apps) == app_count()


def test_one_broken_file_does_not_hide_the_others(tmp_path: Path) -> None:
    root = tmp_path / "fleet"
    write(root, "fleet.yaml", (FLEET / "fleet.yaml").read_text())
    write(root, "teams/a.yaml", "a: 1\na: 2\n")
    (root / "teams" / "b.yaml").write_bytes(b"\xff\n")
    fleet = load_fleet(root)
    assert sorted(str(f) for f in fleet.findings) == [
        "teams/a.yaml:2:1: duplicate key 'a' (first defined at line 1)",
        "teams/b.yaml:1:1: file is not valid UTF-8",
    ]


def test_missing_fleet_yaml_is_a_load_error(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match=r"fleet\.yaml is missing"):
        load_fleet(tmp_path)


def test_a_bare_equals_sign_is_the_string_written() -> None:
    # YAML 1.1 resolves `=` to its "value" type; AlertmanagerConfig matchers write it bare.
    (doc,), findings = parse_text("matchers: [{matchType: =, name: a}, =]\n", "f.yaml")
    assert findings == []
    assert doc.data == {"matchers": [{"matchType": "=", "name": "a"}, "="]}
