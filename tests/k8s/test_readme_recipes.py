"""The overlay recipes the components' READMEs give do what they say once copied into an overlay.

A README's YAML block that lists ``components:`` and ``patches:`` is a recipe: the lines to add to an
overlay's kustomization.yaml. Each is added to a copy of both overlays, rendered, and every object it
patches must carry the patch's values where the components alone gave others. A recipe written as a
``configMapGenerator`` merge beside the component would render the component's value unchanged
(kustomize runs a kustomization's own generators before its components), and fails here.
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


def yaml_blocks(readme: Path) -> Iterator[Any]:
    for match in BLOCK.finditer(readme.read_text()):
        yield yaml.safe_load(match.group(1))


def recipes() -> list[tuple[str, int, dict[str, Any]]]:
    """Each README's recipes: (README, index among them, the lines to add)."""
    found = []
    for readme in READMES:
        blocks = [
            b for b in yaml_blocks(readme) if isinstance(b, dict) and {"components", "patches"} <= set(b)
        ]
        found += [(str(readme.relative_to(ROOT)), i, block) for i, block in enumerate(blocks)]
    return found


RECIPES = recipes()


def in_overlay(overlay: str, recipe: dict[str, Any], directory: Path) -> Rendered:
    """``overlay`` with the recipe added to its kustomization.yaml, as a user copies it, rendered."""
    copy = directory / overlay
    shutil.copytree(K8S / "overlays" / overlay, copy)
    kustomization = yaml.safe_load((copy / "kustomization.yaml").read_text())

    def moved(path: str) -> str:  # the copy's relative paths to the repository's k8s/
        return (
            os.path.relpath((K8S / "overlays" / overlay / path).resolve(), copy)
            if path.startswith("..")
            else path
        )

    kustomization["resources"] = [moved(p) for p in kustomization["resources"]]
    for key, given in recipe.items():
        value = [moved(p) for p in given] if key in ("components", "resources") else given
        kustomization[key] = [*kustomization.get(key, []), *value] if isinstance(value, list) else value
    (copy / "kustomization.yaml").write_text(yaml.safe_dump(kustomization, sort_keys=False))
    result = K8S_CHECK.run([str(K8S_CHECK.BIN / "kubectl"), "kustomize", str(copy)])
    assert result.returncode == 0, result.stderr
    return Rendered(overlay, result.stdout, [o for o in yaml.safe_load_all(result.stdout) if o])


def patched(rendered: Rendered, kind: str, name: str) -> Obj:
    """The object a patch names (a generated ConfigMap by the name before its hash suffix)."""
    return rendered.configmap(name) if kind == "ConfigMap" else rendered.get(kind, name)


def expectations(recipe: dict[str, Any]) -> list[tuple[str, str, Any]]:
    """(kind, name, check) for each patch: a strategic merge patch's object, which must contain it, or
    a JSON patch's ``replace``/``add`` operations, each (path, value) to find in the object."""
    found: list[tuple[str, str, Any]] = []
    for entry in recipe["patches"]:
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
    readmes = {r for r, _, _ in RECIPES}
    for component in CHANGED_BY_A_RECIPE:
        assert f"k8s/components/{component}/README.md" in readmes, component
    # A generator merge beside a component is overwritten by it: no README may suggest one.
    for readme in READMES:
        for block in yaml_blocks(readme):
            generators = block.get("configMapGenerator", []) if isinstance(block, dict) else []
            assert not [g for g in generators if g.get("behavior") == "merge"], readme


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize(("readme", "index", "recipe"), RECIPES, ids=[f"{r}#{i}" for r, i, _ in RECIPES])
def test_a_readme_recipe_copied_into_an_overlay_changes_what_it_says(
    overlay: str, readme: str, index: int, recipe: dict[str, Any], tmp_path: Path
) -> None:
    components = [Path(c).name for c in recipe["components"]]
    plain = render(overlay, components=components)
    tuned = in_overlay(overlay, recipe, tmp_path)
    for kind, name, check in expectations(recipe):
        assert holds(patched(tuned, kind, name), check), f"{readme}: {kind}/{name} not as the recipe says"
        assert not holds(patched(plain, kind, name), check), f"{readme}: {kind}/{name} was so already"
    # The Deployments and CronJobs reading a patched ConfigMap name its new hash (they roll).
    names = {o["metadata"]["name"] for o in tuned.of_kind("ConfigMap")}
    for line in re.findall(r"configMapRef:\n\s+name: (\S+)", tuned.text):
        assert line in names
