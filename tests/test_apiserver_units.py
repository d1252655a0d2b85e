"""Table tests of the double's pure parts: quantities, field sets, merge, selectors, patches."""

from __future__ import annotations

from typing import Any

import pytest

from specc.testing import fieldpath as fp
from specc.testing import ssa
from specc.testing.patch import json_patch, merge_patch
from specc.testing.quantity import canonical_quantity
from specc.testing.schema import builtin_schemas
from specc.testing.selectors import SelectorError, parse_field_selector, parse_label_selector


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("0.5", "500m"),
        ("1024Mi", "1Gi"),
        ("1.5Gi", "1536Mi"),
        ("1000000000", "1G"),
        ("1000", "1k"),
        ("2048", "2048"),
        ("100m", "100m"),
        ("0.1", "100m"),
        ("1.5", "1500m"),
        ("512Ki", "512Ki"),
        ("1e3", "1e3"),
        ("0", "0"),
        (2, "2"),
        (0.25, "250m"),
        ("1.0000000001", "1000000001n"),
    ],
)
def test_quantities_take_the_api_servers_canonical_form(
    raw: str | int | float, canonical: str
) -> None:
    assert canonical_quantity(raw) == canonical


def _deployment_node() -> Any:
    return builtin_schemas().node_for("apps", "v1", "Deployment")


def test_field_set_marks_list_items_and_leaves_like_fieldsv1() -> None:
    config = {
        "metadata": {"labels": {"a": "1"}},
        "spec": {
            "selector": {"matchLabels": {"a": "1"}},
            "template": {
                "spec": {"containers": [{"name": "app", "ports": [{"containerPort": 80}]}]}
            },
        },
    }
    fields = fp.to_fields_v1(ssa.to_field_set(config, _deployment_node()))
    assert fields == {
        "f:metadata": {"f:labels": {"f:a": {}}},
        "f:spec": {
            "f:selector": {},
            "f:template": {
                "f:spec": {
                    "f:containers": {
                        'k:{"name":"app"}': {
                            ".": {},
                            "f:name": {},
                            "f:ports": {
                                'k:{"containerPort":80,"protocol":"TCP"}': {
                                    ".": {},
                                    "f:containerPort": {},
                                }
                            },
                        }
                    }
                }
            },
        },
    }


def test_field_set_rejects_undeclared_fields() -> None:
    with pytest.raises(ssa.TypedError, match=r"\.spec\.bogus: field not declared in schema"):
        ssa.to_field_set({"spec": {"bogus": 1}}, _deployment_node())


@pytest.mark.parametrize(
    ("a", "b", "union", "difference", "intersection"),
    [
        ({"f:x": {}}, {"f:y": {}}, {"f:x": {}, "f:y": {}}, {"f:x": {}}, {}),
        (
            {"f:x": {"f:a": {}, "f:b": {}}},
            {"f:x": {"f:b": {}}},
            {"f:x": {"f:a": {}, "f:b": {}}},
            {"f:x": {"f:a": {}}},
            {"f:x": {"f:b": {}}},
        ),
        (
            {"k:1": {".": {}, "f:a": {}}},
            {"k:1": {".": {}}},
            {"k:1": {".": {}, "f:a": {}}},
            {"k:1": {"f:a": {}}},
            {"k:1": {}},
        ),
    ],
)
def test_field_set_algebra(
    a: dict[str, Any],
    b: dict[str, Any],
    union: dict[str, Any],
    difference: dict[str, Any],
    intersection: dict[str, Any],
) -> None:
    left, right = fp.from_fields_v1(a), fp.from_fields_v1(b)
    assert fp.to_fields_v1(fp.union(left, right)) == union
    assert fp.to_fields_v1(fp.difference(left, right)) == difference
    assert fp.to_fields_v1(fp.intersection(left, right)) == intersection


def test_paths_print_like_structured_merge_diff() -> None:
    path = (
        "f:spec",
        "f:containers",
        'k:{"name":"app"}',
        "f:ports",
        'k:{"containerPort":80,"protocol":"TCP"}',
    )
    assert (
        fp.path_text(path) == '.spec.containers[name="app"].ports[containerPort=80,protocol="TCP"]'
    )


@pytest.mark.parametrize(
    ("live", "config", "merged"),
    [
        (
            [{"name": "a"}, {"name": "b"}],
            [{"name": "b", "image": "x"}],
            [{"name": "a"}, {"name": "b", "image": "x"}],
        ),
        (
            [{"name": "a"}, {"name": "b"}],
            [{"name": "b"}, {"name": "a"}],
            [{"name": "b"}, {"name": "a"}],
        ),
        ([{"name": "a"}], [{"name": "c"}], [{"name": "a"}, {"name": "c"}]),
        (
            [{"name": "a"}, {"name": "x"}, {"name": "b"}],
            [{"name": "b"}, {"name": "a"}],
            [{"name": "x"}, {"name": "b"}, {"name": "a"}],
        ),
    ],
)
def test_associative_lists_merge_by_key_in_config_order(
    live: list[dict[str, Any]], config: list[dict[str, Any]], merged: list[dict[str, Any]]
) -> None:
    node = _deployment_node().fields["spec"].fields["template"].fields["spec"].fields["containers"]
    assert ssa.merge(live, config, node) == merged


def test_atomic_lists_are_replaced_by_the_config() -> None:
    node = _deployment_node().fields["spec"].fields["template"].fields["spec"].fields["tolerations"]
    assert ssa.merge([{"key": "a"}], [{"key": "b"}], node) == [{"key": "b"}]


def test_conflict_message_groups_paths_by_manager() -> None:
    alice = ssa.ManagedEntry("alice", "Apply", "v1", "", {})
    scale = ssa.ManagedEntry("kubectl-scale", "Update", "apps/v1", "", {})
    conflicts = [
        ssa.Conflict(alice, ("f:data", "f:a")),
        ssa.Conflict(scale, ("f:spec", "f:replicas")),
        ssa.Conflict(alice, ("f:data", "f:b")),
    ]
    assert ssa.conflict_message(conflicts) == (
        'Apply failed with 3 conflicts: conflicts with "alice":\n- .data.a\n- .data.b\n'
        'conflicts with "kubectl-scale" using apps/v1:\n- .spec.replicas'
    )


@pytest.mark.parametrize(
    ("selector", "labels", "matches"),
    [
        ("a=1", {"a": "1"}, True),
        ("a==1", {"a": "2"}, False),
        ("a!=1", {}, True),
        ("a in (1,2)", {"a": "2"}, True),
        ("a notin (1,2)", {"a": "3"}, True),
        ("a notin (1,2)", {}, True),
        ("a", {"a": ""}, True),
        ("!a", {"a": ""}, False),
        ("a=1,b", {"a": "1"}, False),
        ("", {"x": "y"}, True),
    ],
)
def test_label_selectors(selector: str, labels: dict[str, str], matches: bool) -> None:
    assert parse_label_selector(selector)(labels) is matches


def test_field_selectors_support_name_and_namespace_only() -> None:
    obj = {"metadata": {"name": "a", "namespace": "n"}}
    assert parse_field_selector("metadata.name=a,metadata.namespace!=x")(obj)
    with pytest.raises(SelectorError, match=r"field label not supported: spec\.x"):
        parse_field_selector("spec.x=1")


def test_merge_and_json_patches() -> None:
    assert merge_patch({"a": {"b": 1, "c": 2}}, {"a": {"b": None, "d": 3}}) == {
        "a": {"c": 2, "d": 3}
    }
    doc = {"spec": {"list": [1, 2]}}
    ops = [
        {"op": "add", "path": "/spec/list/-", "value": 3},
        {"op": "replace", "path": "/spec/list/0", "value": 0},
    ]
    assert json_patch(doc, ops) == {"spec": {"list": [0, 2, 3]}}
    assert doc == {"spec": {"list": [1, 2]}}
