"""The validate stage: every rule, each error located at file:line:col with its field path."""

from __future__ import annotations

from pathlib import Path

import pytest

from specc.errors import Finding
from tests.helpers import app_count, edit, findings, line_of, valid, write

WEB = "apps/storefront/web.yaml"
CATALOG = "apps/storefront/catalog.yaml"
LEDGER = "apps/payments/ledger-db.yaml"
ETCD = "apps/platform/etcd-operator.yaml"
STOREFRONT = "teams/storefront.yaml"


def only(root: Path) -> Finding:
    (finding,) = findings(root)
    return finding


def test_the_example_fleet_is_valid(fleet: Path) -> None:
    v = valid(fleet)
    assert [c.name for c in v.clusters] == ["dev", "staging", "prod-eu"]
    assert sorted(v.teams) == ["payments", "platform", "storefront"]
    assert len(v.apps) == app_count()


# (file, old text, new text, text on the error's line [or (text, lines below it)],
#  field path, message fragment)
# fmt: off
RULES = [
    pytest.param(
        WEB, "  zoneSpread: true", "  zoneSpred: true", "zoneSpred", "spec",
        "unknown field 'zoneSpred' (did you mean 'zoneSpread'?)", id="typo-with-suggestion",
    ),
    pytest.param(
        WEB, "  zoneSpread: true", "  zone_spread: true", "zone_spread", "spec",
        "unknown field 'zone_spread' (did you mean 'zoneSpread'?)", id="snake-case-field",
    ),
    pytest.param(
        WEB, "  zoneSpread: true", "  colour: blue", "colour", "spec",
        "unknown field 'colour'; expected one of: antiAffinity, args, autoscaling,", id="unknown-field-lists-expected",
    ),
    pytest.param(
        WEB, "      tlsSecret: shop-tls", "      tlsSecrt: shop-tls", "tlsSecrt",
        "spec.expose.ingress", "(did you mean 'tlsSecret'?)", id="nested-typo",
    ),
    pytest.param(
        WEB, "{cpu: 0.25, memory: 256Mi}", "{cpu: 0.25, memory: 256MB}", "256MB",
        "spec.resources.requests.memory", "'256MB' is not a quantity", id="bad-quantity",
    ),
    pytest.param(
        LEDGER, "size: 50Gi", "size: -50Gi", "-50Gi", "spec.storage.size",
        "quantity '-50Gi' must not be negative", id="negative-quantity",
    ),
    pytest.param(
        WEB, "limits: {cpu: \"1\", memory: 512Mi}", "limits: {cpu: 100m, memory: 512Mi}",
        "requests: {cpu: 0.25", "spec.resources", "cpu request 250m exceeds its limit 100m",
        id="request-over-limit",
    ),
    pytest.param(
        CATALOG, "team: storefront", "team: storefrnt", "storefrnt", "metadata.team",
        "team 'storefrnt' is not defined in teams/ (did you mean 'storefront'?)", id="missing-team",
    ),
    pytest.param(
        WEB, "storefront-web:2.14.1", "storefront-web", "storefront-web", "spec.image",
        "has no tag or digest", id="image-without-tag",
    ),
    pytest.param(
        WEB, "storefront-web:2.14.1", "storefront-web:latest", "storefront-web", "spec.image",
        "uses the tag 'latest'", id="image-latest",
    ),
    pytest.param(
        CATALOG, "catalog@sha256:3f1c", "catalog@sha256:zz3f1c", "catalog@", "spec.image",
        "has an invalid digest", id="image-bad-digest",
    ),
    pytest.param(
        WEB, "  name: web\n", "  name: Web_1\n", "Web_1", "metadata.name",
        "'Web_1' is not a DNS-1123 label", id="name-not-dns-1123",
    ),
    pytest.param(
        WEB, "  name: web\n", "  name: " + "w" * 64 + "\n", "w" * 64, "metadata.name",
        "longer than 63 characters", id="name-too-long",
    ),
    pytest.param(
        WEB, "    - name: metrics\n      port: 9090", "    - name: http\n      port: 9090",
        ("  ports:", 4), "spec.ports[1].name", "port name 'http' is used twice (also ports[0])",
        id="port-name-twice",
    ),
    pytest.param(
        WEB, "      port: 9090", "      port: 80", ("  ports:", 5), "spec.ports[1].port",
        "port 80/TCP is used twice", id="port-number-twice",
    ),
    pytest.param(
        WEB, "readiness: {path: /healthz, port: http,", "readiness: {path: /healthz, port: 99999,",
        "99999", "spec.probes.readiness.port", "port 99999 is not between 1 and 65535",
        id="probe-port-out-of-range",
    ),
    pytest.param(
        CATALOG, "  replicas: 2\n", "  replicas: 2\n  autoscaling: {minReplicas: 1, maxReplicas: 2}\n",
        "  autoscaling:", "spec.autoscaling", "replicas and autoscaling exclude each other",
        id="replicas-and-autoscaling",
    ),
    pytest.param(
        WEB, "    maxReplicas: 10", "    maxReplicas: 1", "minReplicas: 2", "spec.autoscaling",
        "maxReplicas (1) is below minReplicas (2)", id="autoscaling-bounds",
    ),
    pytest.param(
        WEB, "      features.json: ../../config/web/features.json",
        "      features.json: ../../config/web/nothere.json", "nothere.json",
        "spec.config.files.features.json", "config file '../../config/web/nothere.json' does not exist",
        id="config-file-missing",
    ),
    pytest.param(
        WEB, "      features.json: ../../config/web/features.json",
        "      features.json: ../../../../etc/passwd", "etc/passwd",
        "spec.config.files.features.json", "config file '../../../../etc/passwd' leaves the fleet root",
        id="config-file-traversal",
    ),
    pytest.param(
        WEB, "      features.json: ../../config/web/features.json",
        "      features.json: /etc/passwd", "/etc/passwd",
        "spec.config.files.features.json", "must be a path relative to the spec file",
        id="config-file-absolute",
    ),
    pytest.param(
        CATALOG, "  environments: [staging, prod]", "  environments: [staging, prd]", "prd",
        "placement.environments[1]", "no environment named 'prd' in fleet.yaml",
        id="placement-unknown-environment",
    ),
    pytest.param(
        CATALOG, "placement:\n  environments: [staging, prod]",
        "placement:\n  selector: {region: mars}", "placement:", "placement",
        "placement selects no cluster", id="placement-selects-nothing",
    ),
    pytest.param(
        CATALOG, "    prod:\n      replicas: 3", "    prod:\n      replicas: -3", "replicas: -3",
        "overrides.environments.prod.replicas", "greater than or equal to 0",
        id="override-invalid-value",
    ),
    pytest.param(
        CATALOG, "    prod:\n      replicas: 3", "    prod:\n      replicaz: 3", "replicaz",
        "overrides.environments.prod", "unknown field 'replicaz' (did you mean 'replicas'?)",
        id="override-typo",
    ),
    pytest.param(
        LEDGER, "      updatePartition: 2", "      updatePartition: 7", "updatePartition: 7",
        "overrides.clusters.prod-eu.updatePartition", "updatePartition (7) exceeds members (3)",
        id="cluster-override-invalid-after-merge",
    ),
    pytest.param(
        CATALOG, "    prod:\n      replicas: 3", "    prd:\n      replicas: 3", "prd:",
        "overrides.environments", "override for unknown environment 'prd'",
        id="override-unknown-environment",
    ),
    pytest.param(
        LEDGER, "    prod-eu:", "    prod-us:", "prod-us:", "overrides.clusters",
        "override for unknown cluster 'prod-us'", id="override-unknown-cluster",
    ),
    pytest.param(
        ETCD, "      kind: ServiceAccount\n      metadata:\n        name: etcd-operator",
        "      kind: Secret\n      metadata:\n        name: etcd-operator\n      data: {token: c2VjcmV0}",
        "    - apiVersion: v1", "spec.objects[0]", "a Secret with values does not belong in git",
        id="manifests-secret-with-data",
    ),
    pytest.param(
        ETCD, "      kind: ServiceAccount\n", "", "    - apiVersion: v1", "spec.objects[0]",
        "object needs kind", id="manifests-object-without-kind",
    ),
    pytest.param(
        WEB, "kind: Service\n", "kind: Servce\n", "Servce", "kind",
        "(did you mean 'Service'?)", id="kind-typo",
    ),
    pytest.param(
        WEB, "apiVersion: specc.dev/v1alpha1", "apiVersion: specc.dev/v1", "apiVersion", "apiVersion",
        "apiVersion must be 'specc.dev/v1alpha1'", id="wrong-api-version",
    ),
    pytest.param(
        LEDGER, "  members: 3\n", "", "  image: docker.io", "spec", "required field 'members' is missing",
        id="required-field-missing",
    ),
    pytest.param(
        STOREFRONT, "    pods: 200", "    pods: lots", "lots", "spec.quota.pods",
        "valid integer", id="team-field-type",
    ),
    pytest.param(
        STOREFRONT, "      group: support", "      group: support\n      user: sam", "- role: view",
        "spec.access[1]", "set exactly one of group, user and serviceAccount", id="access-two-subjects",
    ),
    pytest.param(
        STOREFRONT, "        namespaceSelector: {kubernetes.io/metadata.name: monitoring}\n", "",
        "- name: monitoring", "spec.network.allowFrom[1]", "set namespaceSelector and/or podSelector",
        id="allowed-source-without-selector",
    ),
    pytest.param(
        "fleet.yaml", "      environment: staging", "      environment: qa", "environment: qa",
        "spec.clusters[1].environment", "cluster 'staging' names environment 'qa'",
        id="cluster-unknown-environment",
    ),
]
# fmt: on


@pytest.mark.parametrize(("rel", "old", "new", "needle", "field", "message"), RULES)
def test_each_rule_reports_file_line_field_and_what_was_expected(
    fleet: Path,
    rel: str,
    old: str,
    new: str,
    needle: str | tuple[str, int],
    field: str,
    message: str,
) -> None:
    edit(fleet, rel, old, new)
    text, below = needle if isinstance(needle, tuple) else (needle, 0)
    line = line_of(fleet, rel, text) + below
    got = findings(fleet)
    assert any(
        f.position.path == rel
        and f.position.line == line
        and f.field_path == field
        and message in f.message
        for f in got
    ), "\n".join(map(str, got))


def test_error_text_is_file_line_col_field_message(fleet: Path) -> None:
    edit(fleet, WEB, "  zoneSpread: true", "  zoneSpred: true")
    line = line_of(fleet, WEB, "zoneSpred")
    assert str(only(fleet)) == (
        f"{WEB}:{line}:3: spec: unknown field 'zoneSpred' (did you mean 'zoneSpread'?)"
    )


def test_value_errors_point_at_the_value_column(fleet: Path) -> None:
    edit(fleet, LEDGER, "size: 50Gi", "size: 50GB")
    f = only(fleet)
    assert (f.position.line, f.position.column) == (line_of(fleet, LEDGER, "50GB"), 11)


def test_duplicate_key_is_reported_through_validate(fleet: Path) -> None:
    edit(fleet, CATALOG, "  replicas: 2\n", "  replicas: 2\n  replicas: 4\n")
    assert str(only(fleet)) == (
        f"{CATALOG}:{line_of(fleet, CATALOG, 'replicas: 4')}:3: "
        f"duplicate key 'replicas' (first defined at line {line_of(fleet, CATALOG, 'replicas: 2')})"
    )


def test_all_errors_of_a_run_are_collected_and_sorted_by_file_and_line(fleet: Path) -> None:
    edit(fleet, WEB, "  zoneSpread: true", "  zoneSpred: true")
    edit(fleet, WEB, "storefront-web:2.14.1", "storefront-web")
    edit(fleet, CATALOG, "team: storefront", "team: nobody")
    edit(fleet, LEDGER, "size: 50Gi", "size: lots")
    edit(fleet, STOREFRONT, "    pods: 200", "    pods: -1")
    got = findings(fleet)
    assert [f.position.path for f in got] == [LEDGER, CATALOG, WEB, WEB, STOREFRONT]
    assert got == sorted(got)
    assert got[2].position.line < got[3].position.line


def test_a_value_fitting_no_union_member_gets_one_message(fleet: Path) -> None:
    edit(fleet, WEB, "    minAvailable: 1", "    minAvailable: [1]")
    f = only(fleet)
    assert f.field_path == "spec.disruptionBudget.minAvailable"
    assert "integer" in f.message and "string" in f.message


def test_two_apps_of_one_kind_and_name_in_a_team_collide(fleet: Path) -> None:
    text = (fleet / CATALOG).read_text()
    write(fleet, "apps/storefront/catalog-copy.yaml", text)
    f = only(fleet)
    assert f.position.path == CATALOG  # files are read in sorted order: catalog-copy first
    assert "Service 'catalog' of team 'storefront' is already defined at" in f.message


def test_a_stateful_service_may_not_share_a_services_name(fleet: Path) -> None:
    edit(
        fleet, LEDGER, "  name: ledger-db\n  team: payments", "  name: catalog\n  team: storefront"
    )
    f = only(fleet)
    assert f.field_path == "metadata.name"
    assert "Service 'catalog' of team 'storefront' is already defined at" in f.message


def test_the_same_name_in_two_teams_is_fine(fleet: Path) -> None:
    write(
        fleet,
        "apps/payments/web.yaml",
        "apiVersion: specc.dev/v1alpha1\nkind: Service\nmetadata: {name: web, team: payments}\n"
        "spec: {image: 'ghcr.io/acme/pay:1.0'}\n",
    )
    assert len(valid(fleet).apps) == app_count() + 1


def test_two_teams_may_not_share_a_namespace(fleet: Path) -> None:
    edit(
        fleet,
        "teams/platform.yaml",
        "  owners: [ops@acme.example]",
        "  namespace: storefront\n  owners: [ops@acme.example]",
    )
    f = only(fleet)  # reported on the second file read, naming the first
    assert (f.position.path, f.field_path) == (STOREFRONT, "spec.namespace")
    assert "namespace 'storefront' is already defined at teams/platform.yaml:" in f.message


def test_an_override_for_a_cluster_the_placement_leaves_out_is_still_validated(
    fleet: Path,
) -> None:
    # catalog is placed on staging and prod only; its dev override must still be valid.
    edit(
        fleet,
        CATALOG,
        "overrides:\n  environments:\n",
        "overrides:\n  environments:\n    dev:\n      replicas: -1\n",
    )
    f = only(fleet)
    assert f.field_path == "overrides.environments.dev.replicas"
    assert f.position.line == line_of(fleet, CATALOG, "replicas: -1")


def test_an_override_may_remove_a_base_field_with_null(fleet: Path) -> None:
    # ledger-db's dev override sets backup: null; the fleet is valid as shipped.
    assert "backup: null" in (fleet / LEDGER).read_text()
    valid(fleet)


def test_an_override_file_reference_is_checked_too(fleet: Path) -> None:
    edit(
        fleet,
        WEB,
        "      env:\n        LOG_LEVEL: debug",
        "      config:\n        files: {x: ../../../../etc/shadow}",
    )
    f = only(fleet)
    assert f.field_path == "overrides.environments.dev.config.files.x"
    assert "leaves the fleet root" in f.message


def test_manifest_file_references_are_loaded_and_checked(fleet: Path) -> None:
    edit(
        fleet,
        ETCD,
        "../../crds/etcdclusters.etcd.database.coreos.com.yaml",
        "../../crds/missing.yaml",
    )
    f = only(fleet)
    assert (f.field_path, f.message) == (
        "spec.files[0]",
        "manifest file '../../crds/missing.yaml' does not exist",
    )


def test_a_document_that_is_not_a_mapping_is_refused(fleet: Path) -> None:
    write(fleet, "apps/storefront/list.yaml", "- just\n- a list\n")
    assert only(fleet).message == "a fleet document must be a mapping"
