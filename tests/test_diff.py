"""The diff stage over small hand-made renders: entries, paths, masking, prune warnings, output."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from specc.diff import (
    MASK,
    PROTECTED_KINDS,
    DiffOptions,
    FieldChange,
    diff_cluster,
    diff_renders,
    field_changes,
)
from specc.diffreport import (
    MARKER,
    Side,
    abbreviate,
    diff_json,
    diff_markdown,
    diff_text,
    field_lines,
    show_value,
    text_diff,
)
from specc.errors import Position
from specc.objects import SOURCE_ANNOTATION, ClusterRender, DesiredObject

BASE, HEAD = Side("main", "a" * 40), Side("working tree")


def obj(
    kind: str,
    name: str,
    namespace: str = "shop",
    api_version: str = "v1",
    line: int = 1,
    origin: str = "",
    annotations: dict[str, str] | None = None,
    **fields: Any,
) -> DesiredObject:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    meta["annotations"] = {**(annotations or {}), SOURCE_ANNOTATION: f"apps/x.yaml:{line}"}
    body = {"apiVersion": api_version, "kind": kind, "metadata": meta, **fields}
    return DesiredObject(body, Position("apps/x.yaml", line), origin)


def deployment(image: str = "web:1", env: list[dict[str, str]] | None = None) -> DesiredObject:
    container: dict[str, Any] = {"name": "web", "image": image, "args": ["--port=80"]}
    container["env"] = env if env is not None else [{"name": "A", "value": "1"}]
    sidecar = {"name": "proxy", "image": "envoy:1"}
    return obj(
        "Deployment",
        "web",
        api_version="apps/v1",
        spec={"replicas": 2, "template": {"spec": {"containers": [container, sidecar]}}},
    )


def render(cluster: str, *objects: DesiredObject) -> ClusterRender:
    return ClusterRender(cluster, "1.33", list(objects))


def changed(old: DesiredObject, new: DesiredObject) -> dict[str, FieldChange]:
    return {f.path: f for f in field_changes(old.body, new.body)}


# --- entries ---------------------------------------------------------------------


def test_identical_renders_have_no_changes_and_count_unchanged_objects() -> None:
    a = render("dev", deployment(), obj("ConfigMap", "c", data={"k": "v"}))
    result = diff_renders([a], [copy.deepcopy(a)])
    (c,) = result.clusters
    assert not result.has_changes
    assert c.status == "unchanged"
    assert c.unchanged == 2
    assert (c.added, c.removed, c.changed, c.source_moved) == ([], [], [], [])


def test_objects_are_added_removed_and_changed_by_identity() -> None:
    base = render("dev", deployment(), obj("ConfigMap", "old"))
    head = render("dev", deployment("web:2"), obj("ConfigMap", "new"))
    (c,) = diff_renders([base], [head]).clusters
    assert c.status == "changed"
    assert [e.ref for e in c.added] == ["ConfigMap/shop/new"]
    assert [e.ref for e in c.removed] == ["ConfigMap/shop/old"]
    assert [ch.entry.ref for ch in c.changed] == ["Deployment/shop/web"]
    assert c.unchanged == 0


def test_cluster_added_in_fleet_yaml_has_every_object_added() -> None:
    head = [render("dev", deployment()), render("prod", deployment(), obj("ConfigMap", "c"))]
    result = diff_renders([render("dev", deployment())], head)
    dev, prod = result.clusters
    assert (dev.status, prod.status) == ("unchanged", "added")
    assert len(prod.added) == 2
    assert prod.warnings == []


def test_cluster_removed_from_fleet_yaml_has_every_object_removed_and_a_warning() -> None:
    base = [render("dev", deployment()), render("old", deployment(), obj("ConfigMap", "c"))]
    result = diff_renders(base, [render("dev", deployment())])
    old = result.clusters[-1]
    assert old.status == "removed"
    assert len(old.removed) == 2
    assert [w.reason for w in old.warnings] == ["cluster-removed"]
    assert result.has_changes


def test_cluster_order_follows_head_then_clusters_only_in_base() -> None:
    base = [render("a"), render("b"), render("c")]
    head = [render("c"), render("a"), render("d")]
    assert [c.cluster for c in diff_renders(base, head).clusters] == ["c", "a", "d", "b"]


# --- field paths -----------------------------------------------------------------


def test_container_fields_are_addressed_by_container_name() -> None:
    fields = changed(deployment("web:1"), deployment("web:2"))
    f = fields["spec.template.spec.containers[name=web].image"]
    assert (f.op, f.old, f.new) == ("changed", "web:1", "web:2")
    assert len(fields) == 1


def test_inserting_an_env_var_is_one_added_entry_not_shifted_indexes() -> None:
    old = deployment(env=[{"name": "A", "value": "1"}])
    new = deployment(env=[{"name": "NEW", "value": "x"}, {"name": "A", "value": "1"}])
    fields = changed(old, new)
    assert list(fields) == ["spec.template.spec.containers[name=web].env[name=NEW]"]
    f = fields["spec.template.spec.containers[name=web].env[name=NEW]"]
    assert (f.op, f.old, f.new) == ("added", None, {"name": "NEW", "value": "x"})


def test_removing_a_container_shows_it_as_a_list_item_by_name() -> None:
    old = deployment()
    new = copy.deepcopy(old)
    new.body["spec"]["template"]["spec"]["containers"].pop()
    fields = changed(old, new)
    f = fields["spec.template.spec.containers[name=proxy]"]
    assert (f.op, f.old) == ("removed", {"name": "proxy", "image": "envoy:1"})


def test_a_changed_list_of_scalars_is_one_change_of_the_whole_list() -> None:
    old = deployment()
    new = copy.deepcopy(old)
    new.body["spec"]["template"]["spec"]["containers"][0]["args"] = ["--port=80", "--v=2"]
    fields = changed(old, new)
    f = fields["spec.template.spec.containers[name=web].args"]
    assert (f.op, f.old, f.new) == ("changed", ["--port=80"], ["--port=80", "--v=2"])


def test_unnamed_lists_of_objects_use_indexes() -> None:
    old = obj("NetworkPolicy", "p", spec={"ingress": [{"ports": [{"port": 80}]}]})
    new = obj("NetworkPolicy", "p", spec={"ingress": [{"ports": [{"port": 81}]}]})
    assert list(changed(old, new)) == ["spec.ingress[0].ports[0].port"]


def test_keys_that_are_not_identifiers_are_quoted() -> None:
    old = obj("ConfigMap", "c", data={"nginx.conf": "a"})
    new = obj("ConfigMap", "c", data={"nginx.conf": "b"})
    old.body["metadata"]["labels"] = {"app.kubernetes.io/name": "web"}
    new.body["metadata"]["labels"] = {"app.kubernetes.io/name": "shop"}
    assert sorted(changed(old, new)) == [
        'data["nginx.conf"]',
        'metadata.labels["app.kubernetes.io/name"]',
    ]


def test_reordering_a_named_list_is_reported_by_position() -> None:
    a, b = {"name": "A", "value": "1"}, {"name": "B", "value": "2"}
    fields = changed(deployment(env=[a, b]), deployment(env=[b, a]))
    assert "spec.template.spec.containers[0].env[0].name" in fields


# --- source annotation -----------------------------------------------------------


def test_an_object_whose_only_change_is_its_source_line_counts_as_source_moved() -> None:
    base = render("dev", obj("ConfigMap", "c", line=3, data={"k": "v"}))
    head = render("dev", obj("ConfigMap", "c", line=9, data={"k": "v"}))
    result = diff_renders([base], [head])
    (c,) = result.clusters
    assert [e.ref for e in c.source_moved] == ["ConfigMap/shop/c"]
    assert c.changed == []
    assert not result.has_changes
    assert c.status == "unchanged"


def test_the_source_annotation_is_left_out_of_an_object_with_real_changes() -> None:
    old = obj("ConfigMap", "c", line=3, data={"k": "v"})
    new = obj("ConfigMap", "c", line=9, data={"k": "w"})
    assert list(changed(old, new)) == ["data.k"]


# --- secrets, abbreviation, multi-line values ------------------------------------


def test_secret_data_values_are_masked_but_keys_are_shown() -> None:
    old = obj("Secret", "s", data={"password": "c2VjcmV0", "user": "YQ=="})
    new = obj("Secret", "s", data={"password": "bmV3", "token": "dA=="})
    fields = changed(old, new)
    assert fields["data.password"] == FieldChange("data.password", "changed", MASK, MASK)
    assert fields["data.token"] == FieldChange("data.token", "added", None, MASK)
    assert fields["data.user"] == FieldChange("data.user", "removed", MASK, None)
    text = json.dumps([f.__dict__ for f in fields.values()])
    assert "c2VjcmV0" not in text and "bmV3" not in text


def test_secret_data_added_as_a_whole_is_masked_per_key() -> None:
    old = obj("Secret", "s")
    new = obj("Secret", "s", stringData={"password": "hunter2"})
    (f,) = field_changes(old.body, new.body)
    assert (f.path, f.new) == ("stringData", {"password": MASK})


def test_configmap_data_is_not_masked() -> None:
    old = obj("ConfigMap", "c", data={"k": "v1"})
    new = obj("ConfigMap", "c", data={"k": "v2"})
    assert changed(old, new)["data.k"].new == "v2"


def test_long_values_are_abbreviated_with_head_tail_and_length() -> None:
    value = "x" * 50 + "MIDDLE" + "y" * 50
    shown = show_value(value)
    assert shown.startswith('"xxx') and shown.endswith('yyy" (108 chars)')
    assert "MIDDLE" not in shown
    assert len(shown) < 100
    assert abbreviate("short") == "short"
    assert show_value(MASK) == MASK


def test_multiline_values_are_shown_as_a_compact_unified_diff() -> None:
    old = "\n".join(f"line {i}" for i in range(20))
    new = old.replace("line 10", "line ten")
    lines = text_diff(old, new)
    assert lines == ["@@ -10,3 +10,3 @@", " line 9", "-line 10", "+line ten", " line 11"]
    shown = field_lines(FieldChange('data["app.conf"]', "changed", old, new))
    assert shown[0] == '  data["app.conf"]:'
    assert "-   line 10" in shown and "+   line ten" in shown


def test_a_huge_multiline_diff_is_cut_with_a_count() -> None:
    lines = text_diff("", "\n".join(str(i) for i in range(100)), max_lines=10)
    assert len(lines) == 11
    assert lines[-1].startswith("… ") and lines[-1].endswith("more lines")


# --- prune warnings --------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "api_version", "namespace"),
    [
        ("PersistentVolumeClaim", "v1", "shop"),
        ("PersistentVolume", "v1", ""),
        ("Namespace", "v1", ""),
        ("CustomResourceDefinition", "apiextensions.k8s.io/v1", ""),
    ],
)
def test_removing_a_protected_kind_warns_that_sync_keeps_it(
    kind: str, api_version: str, namespace: str
) -> None:
    gone = obj(kind, "x", namespace=namespace, api_version=api_version)
    others = [obj("ConfigMap", f"c{i}") for i in range(9)]
    c = diff_cluster("dev", [gone, *others], others)
    assert [(w.reason, w.subject) for w in c.warnings] == [("protected", gone.ref)]
    assert c.prunes == 0  # the sync skips it, so it does not count against the budget


def test_a_protected_kind_with_the_prune_opt_in_is_pruned_without_warning() -> None:
    gone = obj("PersistentVolumeClaim", "x", annotations={"specc.dev/prune": "allow"})
    others = [obj("ConfigMap", f"c{i}") for i in range(9)]
    c = diff_cluster("dev", [gone, *others], others)
    assert c.warnings == []
    assert c.prunes == 1


def test_removing_a_statefulset_warns_its_data_volumes_remain() -> None:
    spec = {"volumeClaimTemplates": [{"metadata": {"name": "data"}}]}
    gone = obj("StatefulSet", "db", api_version="apps/v1", spec=spec)
    others = [obj("ConfigMap", f"c{i}") for i in range(9)]
    (w,) = diff_cluster("dev", [gone, *others], others).warnings
    assert (w.reason, w.subject) == ("data-volumes", "StatefulSet/shop/db")
    assert "remain" in w.message


def test_removing_a_statefulset_whose_volumes_are_deleted_with_it_says_so() -> None:
    spec = {
        "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Delete"},
        "volumeClaimTemplates": [{"metadata": {"name": "data"}}],
    }
    gone = obj("StatefulSet", "db", api_version="apps/v1", spec=spec)
    others = [obj("ConfigMap", f"c{i}") for i in range(9)]
    (w,) = diff_cluster("dev", [gone, *others], others).warnings
    assert "DELETED" in w.message


def test_pruning_more_than_the_budget_warns_that_sync_will_refuse() -> None:
    objs = [obj("ConfigMap", f"c{i}") for i in range(8)]
    at_budget = diff_cluster("dev", objs, objs[2:], DiffOptions(prune_budget=0.25))
    assert at_budget.prune_share == 0.25
    assert at_budget.warnings == []
    over = diff_cluster("dev", objs, objs[3:], DiffOptions(prune_budget=0.25))
    (w,) = over.warnings
    assert w.reason == "mass-prune"
    assert "--allow-mass-prune" in w.message and "3 objects (38%" in w.message
    loose = diff_cluster("dev", objs, objs[3:], DiffOptions(prune_budget=0.5))
    assert loose.warnings == []


def test_an_empty_render_for_a_cluster_warns_that_sync_refuses_to_empty_it() -> None:
    objs = [obj("ConfigMap", f"c{i}") for i in range(3)]
    (w,) = diff_cluster("dev", objs, []).warnings
    assert w.reason == "mass-prune" and "declares no objects" in w.message


def test_protected_kinds_are_those_the_sync_protects() -> None:
    from specc.sync.plan import PROTECTED_KINDS as SYNC_PROTECTED

    assert PROTECTED_KINDS == SYNC_PROTECTED


# --- content-hashed names --------------------------------------------------------


def test_a_renamed_content_hashed_configmap_is_one_change_that_replaces_the_old_one() -> None:
    old = obj("ConfigMap", "web-config-0123456789", origin="Service/shop/web", data={"k": "a"})
    new = obj("ConfigMap", "web-config-abcdef0123", origin="Service/shop/web", data={"k": "b"})
    keep = [obj("ConfigMap", f"c{i}") for i in range(9)]
    c = diff_cluster("dev", [old, *keep], [new, *keep])
    assert c.added == [] and c.removed == []
    (ch,) = c.changed
    assert ch.entry.ref == "ConfigMap/shop/web-config-abcdef0123"
    assert str(ch.replaces) == "ConfigMap/shop/web-config-0123456789"
    assert [f.path for f in ch.fields] == ["data.k"]
    assert c.prunes == 1


def test_hashed_names_of_different_apps_are_not_paired() -> None:
    old = obj("ConfigMap", "web-config-0123456789", origin="Service/shop/web")
    new = obj("ConfigMap", "web-config-abcdef0123", origin="Service/shop/other")
    c = diff_cluster("dev", [old], [new])
    assert len(c.added) == 1 and len(c.removed) == 1 and c.changed == []


# --- output ----------------------------------------------------------------------


def _sample() -> Any:
    secret = obj("Secret", "s", data={"password": "c2VjcmV0"})
    secret2 = obj("Secret", "s", data={"password": "bmV3"})
    pvc = obj("PersistentVolumeClaim", "data")
    base = render("dev", deployment(), secret, pvc, obj("ConfigMap", "c"))
    head = render("dev", deployment("web:2"), secret2, obj("ConfigMap", "c"), obj("Service", "w"))
    return diff_renders([base], [head])


def test_json_has_the_documented_shape_and_flags_protected_removals() -> None:
    data = diff_json(_sample(), BASE, HEAD)
    assert list(data) == [
        "kind",
        "base",
        "head",
        "changed",
        "pruneBudget",
        "summary",
        "clusters",
    ]
    assert data["summary"] == {
        "clusters": 1,
        "clustersChanged": 1,
        "added": 1,
        "removed": 1,
        "changed": 2,
        "sourceMoved": 0,
        "warnings": 1,
    }
    (c,) = data["clusters"]
    assert c["removed"][0]["object"] == "PersistentVolumeClaim/shop/data"
    assert c["removed"][0]["warnings"] == ["protected"]
    secret = next(ch for ch in c["changed"] if ch["kind"] == "Secret")
    assert secret["fields"] == [
        {"path": "data.password", "op": "changed", "old": MASK, "new": MASK}
    ]
    json.dumps(data)  # serialisable as it is


def test_markdown_starts_with_the_marker_and_puts_warnings_in_bold() -> None:
    md = diff_markdown(_sample(), BASE, HEAD)
    assert md.splitlines()[0] == MARKER
    assert "| dev | 1 | 1 | 2 | 0 | **1** |" in md
    assert "- **dev: PersistentVolumeClaim/shop/data is removed" in md
    assert "<details>" in md and "```diff" in md
    assert "c2VjcmV0" not in md


def test_markdown_of_no_changes_says_so_without_details() -> None:
    a = render("dev", deployment())
    md = diff_markdown(diff_renders([a], [copy.deepcopy(a)]), BASE, HEAD)
    assert "no changes to any cluster" in md
    assert "<details>" not in md


def test_markdown_escapes_html_and_fences_values_with_backticks() -> None:
    old = obj("ConfigMap", "c", data={"README.md": "a\n```\nb\n"})
    new = obj("ConfigMap", "c", data={"README.md": "a\n```\n<script>x</script>\n"})
    md = diff_markdown(diff_renders([render("<b>", old)], [render("<b>", new)]), BASE, HEAD)
    assert "| \\<b\\> |" in md
    assert "<summary><b>&lt;b&gt;</b>" in md
    assert "````diff" in md  # a fence longer than the backtick run inside


def test_markdown_stays_under_the_limit_by_dropping_field_diffs_then_clusters() -> None:
    big = "\n".join(f"line {i}" for i in range(200))
    renders = [
        (
            render(f"c{i}", obj("ConfigMap", "c", data={"f": big})),
            render(f"c{i}", obj("ConfigMap", "c", data={"f": big.replace("line", "LINE")})),
        )
        for i in range(30)
    ]
    result = diff_renders([b for b, _ in renders], [h for _, h in renders])
    md = diff_markdown(result, BASE, HEAD, limit=8_000)
    assert len(md) <= 8_000
    assert "field(s) changed" in md
    assert "not shown: the diff is too long" in md


def test_text_report_lists_each_cluster_and_a_summary() -> None:
    lines = [line for _, line in diff_text(_sample(), BASE, HEAD)]
    assert lines[0] == f"specc diff main ({'a' * 7}) → working tree"
    assert "dev: 1 added, 1 removed, 2 changed" in lines
    assert "  + Service/shop/w  (apps/x.yaml:1)" in lines
    assert any(line.strip().startswith("! PersistentVolumeClaim/shop/data") for line in lines)
    assert lines[-1].startswith("1 of 1 clusters change")


# --- the field walk agrees with deepdiff -----------------------------------------


def _mutate(value: Any, rng: Any) -> Any:
    """Return a copy of ``value`` with one random edit somewhere inside it."""
    if isinstance(value, dict) and value and rng.random() < 0.8:
        key = rng.choice(sorted(value, key=str))
        out = dict(value)
        roll = rng.random()
        if roll < 0.15:
            del out[key]
        elif roll < 0.3:
            out[f"new{rng.randrange(9)}"] = "x"
        else:
            out[key] = _mutate(value[key], rng)
        return out
    if isinstance(value, list) and value and rng.random() < 0.8:
        i = rng.randrange(len(value))
        out_list = list(value)
        roll = rng.random()
        if roll < 0.15:
            del out_list[i]
        elif roll < 0.3:
            out_list.append(copy.deepcopy(value[i]) if not isinstance(value[i], dict) else {"k": 1})
        else:
            out_list[i] = _mutate(value[i], rng)
        return out_list
    return f"changed-{rng.randrange(1000)}"


def test_the_field_walk_finds_the_same_changes_as_deepdiff() -> None:
    import random

    from deepdiff import DeepDiff

    from specc.diff import _changes, _keyed
    from specc.pipeline import render_path
    from tests.helpers import FLEET

    _, renders = render_path(FLEET)
    rng = random.Random(7)
    bodies = [o.body for r in renders for o in r.objects]
    for _ in range(300):
        old = _keyed(rng.choice(bodies))
        new = _keyed(_mutate(old, rng))
        ours = [tuple(p) for p, *_ in _changes(old, new)]
        tree = DeepDiff(old, new, view="tree")
        theirs = [tuple(i.path(output_format="list")) for items in tree.values() for i in items]
        # Ours stop at a changed list of scalars or a replaced subtree: prefixes of theirs.
        for path in theirs:
            assert any(path[: len(p)] == p for p in ours), (path, ours)
        for p in ours:
            assert any(path[: len(p)] == p for path in theirs), (p, theirs)
