"""``make k8s-check`` (k8s/check.py) refuses a kustomization that gives a key twice, naming it, and
names an object Kubernetes would refuse."""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import pytest
from manifests import K8S_CHECK, ROOT, Rendered

OVERLAY = ROOT / "k8s" / "overlays" / "gke" / "kustomization.yaml"


def pasted_twice(root: Path) -> tuple[Path, int, int]:
    """A copy of the GKE overlay under ``root``/k8s/overlays/prod, as a user makes one, given two
    ``components:`` blocks, as two READMEs' *Enable* pasted one after the other give it; the file
    and the lines of the two keys."""
    copy = root / "k8s" / "overlays" / "prod" / "kustomization.yaml"
    copy.parent.mkdir(parents=True)
    text = OVERLAY.read_text()
    first = text.count("\n") + 1
    text += "components:\n  - ../../components/prediction-capture\n"
    second = text.count("\n") + 1
    text += "components:\n  - ../../components/live-evaluation\n"
    copy.write_text(text)
    return copy, first, second


def test_a_key_given_twice_in_an_overlay_is_named_with_its_file_and_line(tmp_path: Path) -> None:
    copy, first, second = pasted_twice(tmp_path)
    [problem] = K8S_CHECK.repeated_key_problems([copy])
    assert problem.startswith(
        f"{copy} line {second}: components: given twice in one mapping (first on line {first}); "
        "kustomize keeps only the last without a word"
    )
    assert K8S_CHECK.repeated_key_problems([OVERLAY]) == []


def test_a_nested_key_given_twice_is_named_too(tmp_path: Path) -> None:
    path = tmp_path / "kustomization.yaml"
    path.write_text("patches:\n  - target:\n      kind: Service\n      kind: Deployment\n    path: p.yaml\n")
    [problem] = K8S_CHECK.repeated_key_problems([path])
    assert problem.startswith(f"{path} line 4: kind: given twice in one mapping (first on line 3)")


def test_make_k8s_check_refuses_it_before_rendering(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # kustomize rendered such an overlay without a word, without the first block's components.
    pasted_twice(tmp_path)
    monkeypatch.setattr(K8S_CHECK, "ROOT", tmp_path)
    monkeypatch.setattr(sys, "argv", ["check.py", "--checkov", str(tmp_path / "checkov")])

    def render(*args: object, **kwargs: object) -> None:
        raise AssertionError("rendered a kustomization that gives a key twice")

    monkeypatch.setattr(K8S_CHECK, "render", render)
    assert K8S_CHECK.main() == 1
    out, err = capsys.readouterr()
    assert "FAIL k8s/overlays/prod/kustomization.yaml line " in err
    assert ": components: given twice in one mapping (first on line " in err
    assert out.endswith("k8s-check: FAILED before rendering: a kustomization gives a key twice\n")


def test_every_kustomization_make_k8s_check_reads_is_found() -> None:
    found = K8S_CHECK.kustomizations(ROOT / "k8s")
    assert {OVERLAY, ROOT / "k8s" / "overlays" / "eks" / "kustomization.yaml"} <= set(found)
    assert len(found) >= 12
    assert K8S_CHECK.repeated_key_problems(found) == []


def test_an_invalid_object_and_a_kind_without_a_schema_are_named_for_each_version(
    gke: Rendered, capsys: pytest.CaptureFixture[str]
) -> None:
    deployment = copy.deepcopy(gke.workload("bankchurn"))
    deployment["spec"]["replicas"] = "two"
    deployment["spec"]["template"]["spec"]["containers"][0]["imagePullPolice"] = "Always"
    stranger = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    problems = K8S_CHECK.validate("gke", [deployment, stranger, *gke.of_kind("BackendConfig")])
    assert len(problems) == 2 * len(K8S_CHECK.VERSIONS)
    for version in K8S_CHECK.VERSIONS:
        assert f"gke k8s {version}: deployment/bankchurn: did not validate: " in "\n".join(problems)
        assert f"gke k8s {version}: widget/w: Couldn't find schema for kind Widget" in "\n".join(problems)
    # The GKE custom resource has no schema there, and is validated against k8s/schemas/ instead.
    assert "no schema there for BackendConfig (validated below)" in capsys.readouterr().out
    assert K8S_CHECK.validate("gke", gke.objects) == []
