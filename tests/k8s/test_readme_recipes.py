"""The overlay recipes the components' READMEs give do what they say once copied into an overlay.

A README's YAML block of ``patches:`` entries (a list of items with ``patch``, no key above them) is a
recipe: the entries to add to the end of an overlay's ``patches:`` list, with the components its
README's first block lists (*Enable*) added under ``components:``. Each is inserted as text into a
copy of both overlays, as a user pastes it, rendered, and every object it patches must carry the
patch's values where the components alone gave others. A recipe written as a ``configMapGenerator``
merge beside the component would render the component's value unchanged (kustomize runs a
kustomization's own generators before its components), and fails here.

A block that is a whole ``patches:`` key would be pasted as a second one, which kustomize takes
without a word, keeping the last: the recipe's patch or the overlay's own are dropped. So no block
may name a key an overlay has, and no kustomization.yaml here may name a key twice.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from manifests import K8S_CHECK, OVERLAYS, ROOT, Obj, Rendered, render

K8S = ROOT / "k8s"
READMES = sorted(K8S.rglob("README.md"))
BLOCK = re.compile(r"^```yaml\n(.*?)^```", re.MULTILINE | re.DOTALL)
#: The components whose values a user is told to change, each by a recipe of its README.
CHANGED_BY_A_RECIPE = (
    "prediction-capture",
    "shadow-challenger",
    "canary-rollout",
    "live-evaluation",
    "batch-scoring",
)


#: k8s/check.py's, which ``make k8s-check`` runs on every kustomization under k8s/.
unique_keys = K8S_CHECK.unique_keys


def yaml_texts(readme: Path) -> list[str]:
    return [match.group(1) for match in BLOCK.finditer(readme.read_text())]


def yaml_blocks(readme: Path) -> Iterator[Any]:
    for text in yaml_texts(readme):
        yield yaml.safe_load(text)


def is_patches(block: Any) -> bool:
    """Whether a block is entries of a ``patches:`` list."""
    return (
        isinstance(block, list) and bool(block) and all(isinstance(e, dict) and "patch" in e for e in block)
    )


def is_for_an_overlay(block: Any) -> bool:
    """Whether a block is lines of a kustomization (not an object: a manifest, a values file)."""
    return isinstance(block, dict) and "kind" not in block and bool({"components", "patches"} & set(block))


def recipes() -> list[tuple[str, list[str], str]]:
    """Each README's recipes: (README#index among them, the components its *Enable* block lists,
    the text of the entries to add to ``patches:``)."""
    found = []
    for readme in READMES:
        texts = yaml_texts(readme)
        blocks = [yaml.safe_load(t) for t in texts]
        entries = [t for t, b in zip(texts, blocks, strict=True) if is_patches(b)]
        if not entries:
            continue
        enable = next(b for b in blocks if isinstance(b, dict) and "components" in b)
        components = [Path(c).name for c in enable["components"]]
        found += [(f"{readme.relative_to(ROOT)}#{i}", components, t) for i, t in enumerate(entries)]
    return found


RECIPES = recipes()


def with_entries(text: str, key: str, entries: str) -> str:
    """A kustomization's text with ``entries`` (a list's items, as text) added to the end of the list
    under its top-level ``key``, or under a new ``key`` at its end if it has none: as a user adds them."""
    lines = text.splitlines(keepends=True)
    if f"{key}:\n" not in lines:
        return text + ("" if text.endswith("\n") else "\n") + f"{key}:\n" + entries
    start = lines.index(f"{key}:\n") + 1
    end = next((i for i in range(start, len(lines)) if re.match(r"[A-Za-z]", lines[i])), len(lines))
    return "".join([*lines[:end], entries, *lines[end:]])


def in_overlay(overlay: str, components: list[str], entries: str, directory: Path) -> Rendered:
    """``overlay`` with the components and a recipe's entries added to its kustomization.yaml as text,
    as a user adds them, rendered."""
    copy = directory / overlay
    shutil.copytree(K8S / "overlays" / overlay, copy)
    text = (copy / "kustomization.yaml").read_text()
    listed = "".join(f"  - ../../components/{c}\n" for c in components)
    text = with_entries(with_entries(text, "components", listed), "patches", entries)
    # The copy's relative paths to the repository's k8s/ (the overlay's ../../base, the components).
    text = text.replace("  - ../../", f"  - {os.path.relpath(K8S, copy)}/")
    kustomization = unique_keys(text)
    own = yaml.safe_load((K8S / "overlays" / overlay / "kustomization.yaml").read_text())
    assert kustomization["patches"] == [*own["patches"], *yaml.safe_load(entries)]
    (copy / "kustomization.yaml").write_text(text)
    result = K8S_CHECK.run([str(K8S_CHECK.BIN / "kubectl"), "kustomize", str(copy)])
    assert result.returncode == 0, result.stderr
    return Rendered(overlay, result.stdout, K8S_CHECK.objects(result.stdout))


def patched(rendered: Rendered, kind: str, name: str) -> Obj:
    """The object a patch names (a generated ConfigMap by the name before its hash suffix)."""
    return rendered.configmap(name) if kind == "ConfigMap" else rendered.get(kind, name)


def expectations(entries: list[dict[str, Any]]) -> list[tuple[str, str, Any]]:
    """(kind, name, check) for each patch: a strategic merge patch's object, which must contain it, or
    a JSON patch's ``replace``/``add`` operations, each (path, value) to find in the object."""
    found: list[tuple[str, str, Any]] = []
    for entry in entries:
        body = yaml.safe_load(entry["patch"])
        if isinstance(body, list):
            target = entry["target"]
            operations = [(op["path"], op["value"]) for op in body if op["op"] in ("replace", "add")]
            found.append((target["kind"], target["name"], operations))
        else:
            content = {k: v for k, v in body.items() if k not in ("apiVersion", "kind", "metadata")}
            found.append((body["kind"], body["metadata"]["name"], content))
    return found


def contains(whole: Any, part: Any) -> bool:
    """Whether ``part`` (a strategic merge patch) is in ``whole``: maps key by key, lists of named
    items by name (containers, env), other lists item by item."""
    if isinstance(part, dict):
        return isinstance(whole, dict) and all(k in whole and contains(whole[k], v) for k, v in part.items())
    if isinstance(part, list):
        if not isinstance(whole, list):
            return False
        if all(isinstance(item, dict) and "name" in item for item in part):
            named = {item.get("name"): item for item in whole if isinstance(item, dict)}
            return all(item["name"] in named and contains(named[item["name"]], item) for item in part)
        return whole == part
    return bool(whole == part)


def at(obj: Any, pointer: str) -> Any:
    """The value at a JSON pointer."""
    for token in pointer.lstrip("/").split("/"):
        obj = obj[int(token)] if isinstance(obj, list) else obj[token.replace("~1", "/").replace("~0", "~")]
    return obj


def holds(obj: Obj, check: Any) -> bool:
    if isinstance(check, list):
        return all(at(obj, path) == value for path, value in check)
    return contains(obj, check)


def test_every_component_a_user_is_told_to_tune_has_a_recipe_and_none_merges_a_generator() -> None:
    readmes = {r.split("#")[0] for r, _, _ in RECIPES}
    for component in CHANGED_BY_A_RECIPE:
        assert f"k8s/components/{component}/README.md" in readmes, component
    # A generator merge beside a component is overwritten by it: no README may suggest one.
    for readme in READMES:
        for block in yaml_blocks(readme):
            generators = block.get("configMapGenerator", []) if isinstance(block, dict) else []
            assert not [g for g in generators if g.get("behavior") == "merge"], readme


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_readme_block_pasted_into_an_overlay_gives_it_a_key_twice(overlay: str) -> None:
    """Pasted at the end of the overlay's kustomization.yaml, a block naming ``patches:`` (which the
    overlays have) would be a second one: kustomize keeps the last without a word, dropping the
    recipe's patch (pasted above the overlay's) or the overlay's own (pasted below)."""
    text = (K8S / "overlays" / overlay / "kustomization.yaml").read_text()
    for readme in READMES:
        for block in yaml_texts(readme):
            if is_for_an_overlay(yaml.safe_load(block)):
                try:
                    unique_keys(text + block)
                except yaml.constructor.ConstructorError as exc:
                    pytest.fail(f"{readme.relative_to(ROOT)}: pasted into {overlay}'s overlay: {exc.problem}")


def test_no_kustomization_names_a_key_twice() -> None:
    """kustomize keeps the last of a key given twice (a second ``patches:``, a second ``components:``)
    without a word."""
    found = [
        p for p in ROOT.rglob("kustomization.yaml") if not {".venv", "node_modules", ".git"} & set(p.parts)
    ]
    assert len(found) >= 12
    assert K8S_CHECK.repeated_key_problems(found) == []


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize(("readme", "components", "entries"), RECIPES, ids=[r for r, _, _ in RECIPES])
def test_a_readme_recipe_copied_into_an_overlay_changes_what_it_says(
    overlay: str, readme: str, components: list[str], entries: str, tmp_path: Path
) -> None:
    plain = render(overlay, components=components)
    tuned = in_overlay(overlay, components, entries, tmp_path)
    for kind, name, check in expectations(yaml.safe_load(entries)):
        assert holds(patched(tuned, kind, name), check), f"{readme}: {kind}/{name} not as the recipe says"
        assert not holds(patched(plain, kind, name), check), f"{readme}: {kind}/{name} was so already"
    # The Deployments and CronJobs reading a patched ConfigMap name its new hash (they roll).
    names = {o["metadata"]["name"] for o in tuned.of_kind("ConfigMap")}
    for line in re.findall(r"configMapRef:\n\s+name: (\S+)", tuned.text):
        assert line in names
