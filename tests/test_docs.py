"""docs/: a page per kind, its field reference generated from the models and fresh, and
every worked example a document specc renders."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from specc.docgen import BEGIN, END, page_name, stale_pages, write_pages
from specc.pipeline import render_path
from specc.spec import KINDS
from tests.helpers import FLEET

DOCS = FLEET.parent / "docs"
_YAML_BLOCK = re.compile(r"^```yaml\n(.*?)^```", re.MULTILINE | re.DOTALL)


#: Pages that describe no kind (written by hand, no generated block).
OTHER_PAGES = ["metrics.md"]


def test_every_kind_has_a_page() -> None:
    assert sorted(p.name for p in DOCS.glob("*.md")) == sorted(
        [*(page_name(k) for k in KINDS), *OTHER_PAGES]
    )


def test_every_pages_field_reference_is_fresh() -> None:
    assert stale_pages(DOCS) == [], "run `python -m specc.docgen --out docs`"


def test_a_stale_reference_is_found_and_rewritten_without_touching_the_prose(
    tmp_path: Path,
) -> None:
    shutil.copytree(DOCS, tmp_path / "docs")
    page = tmp_path / "docs/service.md"
    text = page.read_text(encoding="utf-8")
    edited = text.replace("| `spec.replicas` |", "| `spec.replicaCount` |").replace(
        "A stateless workload", "A stateless workload (edited prose)"
    )
    page.write_text(edited, encoding="utf-8")
    assert stale_pages(tmp_path / "docs") == ["service.md"]
    assert write_pages(tmp_path / "docs") == [page]
    again = page.read_text(encoding="utf-8")
    assert "(edited prose)" in again and "`spec.replicaCount`" not in again
    assert again.count(BEGIN) == again.count(END) == 1


def examples() -> list[tuple[str, str]]:
    out = []
    for page in sorted(DOCS.glob("*.md")):
        for i, block in enumerate(_YAML_BLOCK.findall(page.read_text(encoding="utf-8"))):
            if block.startswith("apiVersion: specc.dev/v1alpha1"):
                out.append((f"{page.name}#{i}", block))
    return out


def test_every_kind_has_a_worked_example() -> None:
    kinds = {yaml.safe_load(text)["kind"] for _, text in examples()}
    assert kinds == set(KINDS)


@pytest.mark.parametrize(("where", "text"), examples(), ids=[w for w, _ in examples()])
def test_a_worked_example_validates_and_renders(where: str, text: str, tmp_path: Path) -> None:
    """Each example, put into the example fleet in place of its apps, renders cleanly."""
    root = tmp_path / "fleet"
    shutil.copytree(FLEET, root)
    shutil.rmtree(root / "apps")
    doc = yaml.safe_load(text)
    if doc["kind"] == "Fleet":
        target = root / "fleet.yaml"
    elif doc["kind"] == "Team":
        target = root / "teams" / f"{doc['metadata']['name']}.yaml"
    else:
        target = root / "apps/docs/example.yaml"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    _, renders = render_path(root)
    assert renders, where
