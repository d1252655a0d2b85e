"""Values as written: YAML 1.2 core typing, string fields keep their text, size limits."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from specc.limits import MAX_VALUES_BYTES, values_size
from specc.load import _core_scalar, parse_text
from specc.pipeline import render_path
from tests.test_tenancy import errors, fleet, manifests

AMBIGUOUS = [
    "NO",
    "off",
    "On",
    "y",
    "1.10",
    "012345",
    "12:30:00",
    "True",
    "0x1F",
    "1e3",
    "+1",
    ".5",
    "1_000",
    "0b101",
    "2001-12-14",
    "=",
    "0o17",
    "-0",
    "8080",
    "true",
    "3.0",
]


def service(env: str, extra: str = "") -> str:
    return (
        "apiVersion: specc.dev/v1alpha1\nkind: Service\nmetadata: {name: web, team: alpha}\n"
        "spec:\n  image: ghcr.io/acme/web:1.0.0\n  replicas: 1\n"
        f"  env:\n{env}{extra}"
    )


def env_of(root: Path) -> dict[str, str]:
    (render,) = render_path(root)[1]
    (dep,) = [o for o in render.objects if o.kind == "Deployment"]
    container = dep.body["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e["value"] for e in container["env"]}


def test_env_values_keep_the_text_written(tmp_path: Path) -> None:
    env = "".join(f"    V{i}: {text}\n" for i, text in enumerate(AMBIGUOUS))
    got = env_of(fleet(tmp_path, {"apps/alpha/web.yaml": service(env)}))
    assert got == {f"V{i}": text for i, text in enumerate(AMBIGUOUS)}


def test_an_overrides_env_value_keeps_its_text_and_replaces_the_base_text(tmp_path: Path) -> None:
    text = service("    VERSION: 1.10\n    ZIP: 012345\n") + (
        "overrides:\n  environments:\n    prod:\n      env: {VERSION: 2.20, ZIP: 7}\n"
    )
    assert env_of(fleet(tmp_path, {"apps/alpha/web.yaml": text})) == {"VERSION": "2.20", "ZIP": "7"}


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("NO", "NO"),
        ("off", "off"),
        ("yes", "yes"),
        ("y", "y"),
        ("12:30:00", "12:30:00"),
        ("1_000", "1_000"),
        ("0b1", "0b1"),
        ("2001-12-14", "2001-12-14"),
        ("=", "="),
        ("true", True),
        ("False", False),
        ("~", None),
        ("null", None),
        ("", None),
        ("012345", 12345),
        ("0o17", 15),
        ("0x1F", 31),
        ("-3", -3),
        ("1.10", 1.1),
        ("1e3", 1000.0),
        (".inf", float("inf")),
        ("-.Inf", float("-inf")),
    ],
)
def test_plain_scalars_follow_the_yaml_1_2_core_schema(text: str, value: object) -> None:
    assert _core_scalar(text) == value and type(_core_scalar(text)) is type(value)
    (doc,), findings = parse_text(f"a: {text}\n", "x.yaml")
    # What YAML 1.1 already reads as text (0o17, 1e3) stays text: no string becomes a number.
    expected = text if text in ("0o17", "1e3") else value
    assert not findings and doc.data["a"] == expected


def test_quoted_scalars_stay_strings() -> None:
    (doc,), _ = parse_text("a: '1.10'\nb: \"true\"\nc: !!str 5\n", "x.yaml")
    assert doc.data == {"a": "1.10", "b": "true", "c": "5"}


def test_a_boolean_field_takes_only_true_and_false(tmp_path: Path) -> None:
    text = service("    A: b\n") + "  zoneSpread: maybe\n"
    found = errors(fleet(tmp_path, {"apps/alpha/web.yaml": text}))
    assert any("zoneSpread" in e and e.startswith("apps/alpha/web.yaml:9:") for e in found), found


def test_an_int_field_reads_a_leading_zero_as_decimal(tmp_path: Path) -> None:
    text = service("    A: b\n").replace("replicas: 1", "replicas: 010")
    (render,) = render_path(fleet(tmp_path, {"apps/alpha/web.yaml": text}))[1]
    (dep,) = [o for o in render.objects if o.kind == "Deployment"]
    assert dep.body["spec"]["replicas"] == 10  # YAML 1.1 read 010 as octal 8


# --- sizes -----------------------------------------------------------------------------------


def test_values_size_counts_as_the_api_server_does() -> None:
    assert values_size({"kind": "ConfigMap", "data": {"a": "é" * 10}}) == 20
    blob = base64.b64encode(b"\0" * 300).decode()
    assert values_size({"kind": "ConfigMap", "binaryData": {"b": blob}}) == 300
    assert values_size({"kind": "Secret", "data": {"a": blob}, "stringData": {"a": "xy"}}) == 2


def _big_configmap(size: int) -> str:
    return f"- apiVersion: v1\n  kind: ConfigMap\n  metadata: {{name: big}}\n  data: {{a: {'x' * size}}}\n"


def test_a_configmap_of_exactly_1_mib_passes_and_one_byte_more_fails(tmp_path: Path) -> None:
    ok = fleet(
        tmp_path / "ok", {"apps/alpha/raw.yaml": manifests(_big_configmap(MAX_VALUES_BYTES))}
    )
    render_path(ok)
    bad = fleet(
        tmp_path / "bad", {"apps/alpha/raw.yaml": manifests(_big_configmap(MAX_VALUES_BYTES + 1))}
    )
    (found,) = errors(bad)
    assert found.startswith("apps/alpha/raw.yaml:9:") and "1048577 bytes" in found, found[:200]


def test_a_binary_configmap_over_1_mib_decoded_fails(tmp_path: Path) -> None:
    blob = base64.b64encode(b"\1" * (MAX_VALUES_BYTES + 10)).decode()
    obj = f"- apiVersion: v1\n  kind: ConfigMap\n  metadata: {{name: bin}}\n  binaryData: {{b: {blob}}}\n"
    found = errors(fleet(tmp_path, {"apps/alpha/raw.yaml": manifests(obj)}))
    assert any("over the API server's limit" in e for e in found)


def test_a_service_config_file_over_1_mib_fails_validate(tmp_path: Path) -> None:
    text = service("    A: b\n") + "  config:\n    files:\n      big.txt: ../../config/big.txt\n"
    root = fleet(
        tmp_path, {"apps/alpha/web.yaml": text, "config/big.txt": "y" * (MAX_VALUES_BYTES + 1)}
    )
    found = errors(root)
    assert any(e.startswith("apps/alpha/web.yaml:") and "1 MiB" in e for e in found), found


def test_annotations_over_256_kib_fail(tmp_path: Path) -> None:
    obj = (
        "- apiVersion: v1\n  kind: ConfigMap\n"
        f"  metadata: {{name: noted, annotations: {{a: {'z' * (256 << 10)}}}}}\n"
    )
    found = errors(fleet(tmp_path, {"apps/alpha/raw.yaml": manifests(obj)}))
    assert any("256 KiB" in e for e in found), found


def test_an_unquoted_number_in_a_string_field_says_did_you_mean_quote(tmp_path: Path) -> None:
    text = (
        "apiVersion: specc.dev/v1alpha1\nkind: Fleet\nmetadata: {name: t}\nspec:\n"
        "  environments: [{name: prod}]\n"
        "  clusters: [{name: c1, environment: prod, kubernetesVersion: 1.30}]\n"
    )
    (found,) = errors(fleet(tmp_path, {"fleet.yaml": text}))
    assert found.startswith("fleet.yaml:6:")
    assert "YAML reads the unquoted 1.30 as a float; did you mean '1.30'?" in found
