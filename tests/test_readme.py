"""The README's links within itself, and its contents list, against its headings as GitHub anchors them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
#: The Markdown files whose in-page links are checked.
DOCUMENTS = [README, *sorted((ROOT / "k8s").rglob("README.md")), ROOT / "monitoring" / "README.md"]
LINK = re.compile(r"\]\(#([^)\s]+)\)")


def headings(text: str) -> list[tuple[int, str]]:
    """Each heading's level and title, outside code blocks."""
    found, in_code = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and (match := re.match(r"^(#{1,6}) (.+?)\s*$", line)):
            found.append((len(match[1]), match[2]))
    return found


def anchor(title: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")


def anchors(text: str) -> set[str]:
    seen: dict[str, int] = {}
    found = set()
    for _, title in headings(text):
        base = anchor(title)
        count = seen.get(base, 0)
        found.add(base if count == 0 else f"{base}-{count}")  # a repeated heading gets -1, -2, ...
        seen[base] = count + 1
    return found


def test_anchors_are_githubs() -> None:
    assert anchor("Batch scoring (`mlp score`)") == "batch-scoring-mlp-score"
    assert anchor("API keys: who may ask, and who asked") == "api-keys-who-may-ask-and-who-asked"
    assert anchors("## Cost\n## Cost\n") == {"cost", "cost-1"}


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_link_within_a_document_names_one_of_its_headings(document: Path) -> None:
    text = document.read_text()
    broken = sorted(set(LINK.findall(text)) - anchors(text))
    assert not broken, f"{document.relative_to(ROOT)}: no heading for {broken}"


def test_the_contents_list_every_section_in_order() -> None:
    text = README.read_text()
    contents = text.split("## Contents\n", 1)[1].split("\n## ", 1)[0]
    listed = LINK.findall(contents)
    sections = [anchor(title) for level, title in headings(text) if level in (2, 3) and title != "Contents"]
    assert listed == sections


#: The ``mlp versions`` example in *Training and the registry*: its header line opens the block.
VERSIONS_EXAMPLE = re.compile(
    r"```\n(bankchurn at (\S+) \(roc_auc on each version's own held-out split\)\n.*?)\n```", re.S
)
#: The data column of ``mlp versions``: where, rows, the sha256's first 12 characters.
DATA = re.compile(r"(?P<where>.+), (?P<rows>[\d,]+) rows, sha256 (?P<sha>[0-9a-f]+)")


def test_the_versions_example_is_what_the_trainer_decides_and_mlp_versions_prints(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The example trains on the synthetic data, the real file, then the synthetic data again. Each
    decision that needs no model (no champion yet; a synthetic version against a real-data champion,
    which is never replaced) is the trainer's, the aliases follow the decisions, and the table is
    ``mlp versions``' rendering of the README's own figures: the example cannot show a synthetic
    version replacing a real champion, as it once did, while the code keeps the champion."""
    from datetime import UTC, datetime
    from types import SimpleNamespace

    from servekit.registry import get_service
    from servekit.training import champion as deciding
    from servekit.training import versions

    spec = get_service("bankchurn")
    found = VERSIONS_EXAMPLE.search(README.read_text())
    assert found, "no `mlp versions bankchurn` example in the README"
    example, tracking_uri = found[1], found[2]
    _, heads, *lines = example.splitlines()
    columns = re.split(r"\s{2,}", heads)
    given = sorted(
        (dict(zip(columns, re.split(r"\s{2,}", line), strict=True)) for line in lines),
        key=lambda row: int(row["version"]),
    )

    champion: dict[str, str] | None = None
    rows = []
    for row in given:
        data = DATA.fullmatch(row["data"])
        assert data, row["data"]
        synthetic = data["where"] == "synthetic"
        source = "synthetic(rows=10000, seed=42)" if synthetic else f"/data/{data['where']}"
        key = spec.recipe.primary_metric
        metrics = {key: float(row[key])}
        metrics[f"{key}_ci_low"], metrics[f"{key}_ci_high"] = map(float, row["95% CI"].split("-"))
        if champion is None or (synthetic and not deciding.is_synthetic(champion["source"])):
            held = champion or {"version": None, "source": None}
            monkeypatch.setattr(deciding, "current_champion", lambda client, name, v=held["version"]: v)
            trained_on = SimpleNamespace(metadata={"data": {"source": held["source"]}})
            monkeypatch.setattr(deciding, "load_artifact", lambda *args, a=trained_on: a)
            promoted, _, decision = deciding.decide(
                spec, None, tracking_uri, None, new_outputs=None, metrics=metrics, source=source
            )
        else:  # compared on held-out rows, which takes the two models: the README's word for it
            decision = row["decision"]
            promoted = decision.startswith("promoted to champion")
            assert promoted or decision.startswith("kept champion"), decision
        if promoted:
            champion = {"version": row["version"], "source": source}
        version = SimpleNamespace(
            version=row["version"],
            run_id=f"run{row['version']}",
            creation_timestamp=datetime.strptime(row["registered (UTC)"], "%Y-%m-%d %H:%M")
            .replace(tzinfo=UTC)
            .timestamp()
            * 1000,
            tags={versions.DECISION_TAG: decision},
        )
        run = SimpleNamespace(
            data=SimpleNamespace(
                metrics=metrics,
                params={
                    "data.source": source,
                    "data.rows": data["rows"].replace(",", ""),
                    "data.sha256": data["sha"],
                },
            )
        )
        client = SimpleNamespace(get_run=lambda run_id, run=run: run)
        rows.append((version, client))

    assert champion is not None
    newest = rows[-1][0].version
    aliases = {newest: ["challenger"]}
    aliases.setdefault(champion["version"], []).append("champion")
    rendered = [
        versions._row(spec, client, version, sorted(aliases.get(version.version, [])))
        for version, client in reversed(rows)
    ]
    assert versions.render(spec, rendered, tracking_uri) == example
