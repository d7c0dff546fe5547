"""Who the workflows sign in as, and the overlay READMEs' commands that make those identities.

One service account (one IAM role), ``GCP_SERVICE_ACCOUNT`` / ``AWS_ROLE_ARN``, served CI's image
push, the Deploy workflows and Retrain: CI's ``images`` job has no environment, so every push to
``main`` held the deploy's cluster admin, and no README said how to create any of it. Each workflow
now has an identity of its own, trusted for its job's OIDC subject alone. These tests run the
READMEs' shell blocks with stand-ins of gcloud, aws, eksctl, gh and kubectl that record what they
are asked, and hold that against the workflows: every variable a workflow reads is set where its
job can read it, every variable a README sets is read, each identity trusts its job's subject and
may do what its workflow does and no more, and the registries keep their tags.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from processes import ROOT
from workflow_steps import run_script

sys.path.insert(0, str(ROOT / "tests" / "k8s"))
from manifests import render

WORKFLOWS = ROOT / ".github" / "workflows"
OVERLAYS = ("gke", "eks")
#: The READMEs' placeholder of this repository, in every subject they trust.
REPOSITORY = "OWNER/REPO"
#: Each sign-in action and the input naming its identity.
SIGN_INS = {
    "google-github-actions/auth": "service_account",
    "aws-actions/configure-aws-credentials": "role-to-assume",
}
#: The one condition under which a job with no environment may sign in: its subject is then main's.
PUSH_TO_MAIN = "github.event_name == 'push' && github.ref == 'refs/heads/main'"
#: The single identity of before: no workflow reads it, and a README names it only to delete it.
RETIRED = ("GCP_SERVICE_ACCOUNT", "AWS_ROLE_ARN")
SHELL_BLOCK = re.compile(r"^```(?:bash|sh)\n(.*?)^```", re.MULTILINE | re.DOTALL)

# --- The workflows ------------------------------------------------------------------------------


def strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


@dataclass(frozen=True)
class Job:
    workflow: str
    name: str
    body: dict[str, Any] = field(hash=False)

    def __str__(self) -> str:
        return f"{self.workflow} ({self.name})"

    @property
    def environment(self) -> str | None:
        environment = self.body.get("environment")
        return environment["name"] if isinstance(environment, dict) else environment

    def reads(self, context: str) -> set[str]:
        """The names this job reads from ``vars`` or ``secrets``."""
        return {name for text in strings(self.body) for name in re.findall(rf"\b{context}\.(\w+)", text)}

    def sign_ins(self) -> list[tuple[int, str, str]]:
        """Each sign-in step: its index, its action, and the variable naming its identity."""
        found = []
        for index, step in enumerate(self.body["steps"]):
            action = step.get("uses", "").split("@")[0]
            if action in SIGN_INS:
                [variable] = re.findall(r"^\$\{\{ vars\.(\w+) \}\}$", step["with"][SIGN_INS[action]])
                found.append((index, action, variable))
        return found

    def subject(self, step: int) -> str:
        """The ``sub`` of the OIDC token the step signs in with."""
        if self.environment:
            return f"repo:{REPOSITORY}:environment:{self.environment}"
        assert self.body["steps"][step].get("if") == PUSH_TO_MAIN, (
            f"{self}: a sign-in with no environment and not only on a push to main: its subject is "
            "whatever branch or pull request ran it"
        )
        return f"repo:{REPOSITORY}:ref:refs/heads/main"


JOBS = [
    Job(path.name, name, body)
    for path in sorted(WORKFLOWS.glob("*.yml"))
    for name, body in yaml.safe_load(path.read_text())["jobs"].items()
]


def subjects_of(variable: str) -> set[str]:
    """The subjects of every job that signs in as the identity ``variable`` names."""
    return {job.subject(index) for job in JOBS for index, _, used in job.sign_ins() if used == variable}


def identities(action: str) -> set[str]:
    return {variable for job in JOBS for _, used, variable in job.sign_ins() if used == action}


# --- The READMEs' commands, run with stand-ins that record them ---------------------------------

STAND_IN = """#!{python}
import json, os, sys
argv = [os.path.basename(sys.argv[0]), *sys.argv[1:]]
files = {{a: open(a[len("file://"):]).read() for a in argv if a.startswith("file://")}}
with open(os.environ["CALLS"], "a") as calls:
    calls.write(json.dumps({{"argv": argv, "stdin": sys.stdin.read(), "files": files}}) + "\\n")
if argv[:3] == ["gcloud", "projects", "describe"]:
    print("123456789012")
elif argv[:2] == ["gh", "api"] and "--jq" in argv:
    print("4242")
elif argv[:2] == ["mlp", "api-key"]:
    print("mlp_key_of_" + argv[2])
"""


@dataclass(frozen=True)
class Call:
    argv: list[str]
    stdin: str
    files: dict[str, str]

    def flag(self, name: str) -> str:
        [value] = self.flags(name)
        return value

    def flags(self, name: str) -> list[str]:
        found = [value for flag, value in zip(self.argv, self.argv[1:], strict=False) if flag == name]
        return found + [a.removeprefix(f"{name}=") for a in self.argv if a.startswith(f"{name}=")]

    def document(self, name: str) -> Any:
        """A JSON flag's document, given inline or as file://."""
        value = self.flag(name)
        return json.loads(self.files.get(value, value))

    def starts(self, *words: str) -> bool:
        return self.argv[: len(words)] == list(words)


def readme(overlay: str) -> str:
    return (ROOT / "k8s" / "overlays" / overlay / "README.md").read_text()


@pytest.fixture(scope="module")
def commands(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Call]]:
    """What each README's prerequisites and its blocks that set up GitHub (``gh``) ask, in order:
    each block run as a user would, after the prerequisites, in ``bash -eu`` (a variable no block
    sets stops it)."""
    found = {}
    for overlay in OVERLAYS:
        work = tmp_path_factory.mktemp(f"readme-{overlay}")
        bin_dir = work / "bin"
        stand_ins = [bin_dir / name for name in ("gcloud", "aws", "eksctl", "gh", "kubectl")]
        stand_ins.append(work / ".venv" / "bin" / "mlp")  # the READMEs' .venv/bin/mlp api-key
        for stand_in in stand_ins:
            stand_in.parent.mkdir(parents=True, exist_ok=True)
            stand_in.write_text(STAND_IN.format(python=sys.executable))
            stand_in.chmod(0o755)
        prerequisites, *blocks = SHELL_BLOCK.findall(readme(overlay))
        calls = work / "calls.jsonl"
        # The prerequisites' calls once: run again before each block, they go elsewhere.
        runs = [prerequisites] + [
            f'CALLS="{work / "again.jsonl"}"\n{prerequisites}\nCALLS="{calls}"\n{block}'
            for block in blocks
            if re.search(r"^\s*gh |\| gh ", block, re.MULTILINE)
        ]
        for script in runs:
            done = subprocess.run(
                ["bash", "--noprofile", "--norc", "-eu", "-o", "pipefail", "-c", script],
                cwd=work,
                env={
                    "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
                    "HOME": str(work),
                    "CALLS": str(calls),
                },
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert done.returncode == 0, f"{overlay} README block failed:\n{script}\n{done.stderr}"
        found[overlay] = [Call(**json.loads(line)) for line in calls.read_text().splitlines()]
    return found


def set_by_gh(calls: list[Call], kind: str) -> dict[tuple[str, str | None], str]:
    """``gh variable|secret set NAME [--env ENV]``: (name, environment) -> value."""
    found = {}
    for call in calls:
        if call.starts("gh", kind, "set"):
            environments = call.flags("--env")
            value = call.flags("--body")
            found[(call.argv[3], environments[0] if environments else None)] = (
                value[0] if value else call.stdin
            )
    return found


def variables(commands: dict[str, list[Call]], overlay: str) -> dict[str, str]:
    return {name: value for (name, _), value in set_by_gh(commands[overlay], "variable").items()}


# --- Variables and secrets: the READMEs set what the workflows read, where they read it --------


@pytest.mark.parametrize("kind", ["variable", "secret"])
def test_each_name_a_workflow_reads_is_set_where_its_job_reads_it(
    kind: str, commands: dict[str, list[Call]]
) -> None:
    """A job in an environment reads that environment's and the repository's variables; a job with
    none (CI's images) the repository's alone. A secret of a job in an environment is that
    environment's: a repository secret is any branch's workflow's (the load test's keys were)."""
    made = {key for overlay in OVERLAYS for key in set_by_gh(commands[overlay], kind)}
    for job in JOBS:
        for name in job.reads("vars" if kind == "variable" else "secrets"):
            where = {environment for made_name, environment in made if made_name == name}
            if kind == "secret" and job.environment:
                assert job.environment in where, f"{job}: secret {name} is not set in {job.environment}"
            else:
                assert where & {None, job.environment}, (
                    f"{job} reads {kind} {name}, which no README sets where it can read it (set: {where})"
                )


@pytest.mark.parametrize("kind", ["variable", "secret"])
def test_each_name_a_readme_sets_is_read_by_a_workflow_where_it_is_set(
    kind: str, commands: dict[str, list[Call]]
) -> None:
    for overlay in OVERLAYS:
        for name, environment in set_by_gh(commands[overlay], kind):
            readers = [
                job
                for job in JOBS
                if name in job.reads("vars" if kind == "variable" else "secrets")
                and environment in (None, job.environment)
            ]
            assert readers, (
                f"{overlay} README sets {kind} {name} ({environment or 'repository'}): nothing reads it"
            )


def test_the_readmes_name_no_identity_a_workflow_does_not_sign_in_as() -> None:
    """The GKE README said the deploy checked images as `GCP_SERVICE_ACCOUNT`, "which CI pushes with"."""
    read = {name for job in JOBS for name in job.reads("vars")}
    for overlay in OVERLAYS:
        text = readme(overlay)
        for name in set(re.findall(r"\b[A-Z][A-Z0-9_]*(?:SERVICE_ACCOUNT|ROLE_ARN)\b", text)):
            if name in RETIRED:
                assert name not in read, f"a workflow still reads the retired {name}"
                assert f"gh variable delete {name}" in text, f"{overlay} README names {name} but to delete it"
            else:
                assert name in read, f"{overlay} README names {name}, which no workflow reads"


# --- Identities: each trusts its job's subject alone, and may do its workflow's work alone -----


def test_each_google_service_account_is_acted_as_by_its_jobs_subject_alone(
    commands: dict[str, list[Call]],
) -> None:
    calls, set_to = commands["gke"], variables(commands, "gke")
    [provider] = [
        c for c in calls if c.starts("gcloud", "iam", "workload-identity-pools", "providers", "create-oidc")
    ]
    assert provider.flag("--issuer-uri") == "https://token.actions.githubusercontent.com"
    assert "google.subject=assertion.sub" in provider.flag("--attribute-mapping").split(",")
    assert provider.flag("--attribute-condition") == f"assertion.repository == '{REPOSITORY}'"
    # The provider the workflows name is the one created; its pool is the members' pool.
    pool = set_to["GCP_WORKLOAD_IDENTITY_PROVIDER"].removesuffix(f"/providers/{provider.argv[5]}")
    assert pool.endswith(f"/workloadIdentityPools/{provider.flag('--workload-identity-pool')}")
    acted_as: dict[str, set[str]] = {}
    for call in calls:
        member = call.flag("--member") if "--member" in call.argv else ""
        if (
            call.starts("gcloud", "iam", "service-accounts", "add-iam-policy-binding")
            and "/subject/repo:" in member
        ):
            assert call.flag("--role") == "roles/iam.workloadIdentityUser"
            assert member.startswith(f"principal://iam.googleapis.com/{pool}/subject/"), member
            acted_as.setdefault(call.argv[4], set()).add(member.split("/subject/", 1)[1])
    signed_in = identities("google-github-actions/auth")
    assert signed_in == {
        "GCP_PUSH_SERVICE_ACCOUNT",
        "GCP_DEPLOY_SERVICE_ACCOUNT",
        "GCP_RETRAIN_SERVICE_ACCOUNT",
        "LOADTEST_GCP_SERVICE_ACCOUNT",
    }
    accounts = {set_to[variable] for variable in signed_in}
    assert len(accounts) == len(signed_in), "two workflows share a service account"
    for variable in signed_in:
        assert acted_as[set_to[variable]] == subjects_of(variable), variable


@pytest.mark.parametrize("action", SIGN_INS)
def test_no_two_identities_of_a_cloud_trust_the_same_subject(action: str) -> None:
    """Retrain ran in `production`, as the deploy does: its job's subject was the deploy's, which the
    deploy's identity trusts, so a Retrain job could have signed in as the deploy and changed the
    cluster. Each identity's subjects are its own (the tests above: each trusts exactly those)."""
    trusted_by = {variable: subjects_of(variable) for variable in identities(action)}
    for variable, subjects in trusted_by.items():
        others = {o: s & subjects for o, s in trusted_by.items() if o != variable and s & subjects}
        assert not others, f"{variable} trusts the subjects of {others}"


def trust(call: Call) -> tuple[str, str]:
    [statement] = call.document("--assume-role-policy-document")["Statement"]
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Principal"]["Federated"].endswith(":oidc-provider/token.actions.githubusercontent.com")
    claims = statement["Condition"]["StringEquals"]
    return claims["token.actions.githubusercontent.com:aud"], claims[
        "token.actions.githubusercontent.com:sub"
    ]


def test_each_aws_role_is_assumed_by_its_jobs_subject_alone(commands: dict[str, list[Call]]) -> None:
    calls, set_to = commands["eks"], variables(commands, "eks")
    [provider] = [c for c in calls if c.starts("aws", "iam", "create-open-id-connect-provider")]
    assert provider.flag("--url") == "https://token.actions.githubusercontent.com"
    assert provider.flag("--client-id-list") == "sts.amazonaws.com"
    trusts = {
        c.flag("--role-name"): trust(c)
        for c in calls
        if c.starts("aws", "iam", "create-role")
        and "Federated" in json.dumps(c.document("--assume-role-policy-document"))
    }
    signed_in = identities("aws-actions/configure-aws-credentials")
    assert signed_in == {
        "AWS_PUSH_ROLE_ARN",
        "AWS_DEPLOY_ROLE_ARN",
        "AWS_RETRAIN_ROLE_ARN",
        "LOADTEST_AWS_ROLE_ARN",
    }
    assert len({set_to[variable] for variable in signed_in}) == len(signed_in), "two workflows share a role"
    for variable in signed_in:
        [subject] = subjects_of(variable)
        role = set_to[variable].rsplit(":role/", 1)[1]
        assert trusts[role] == ("sts.amazonaws.com", subject), variable


def cluster_bindings(calls: list[Call]) -> dict[str, set[str]]:
    """Each Kubernetes user's and group's bindings (``kubectl create [cluster]rolebinding``), as
    ``RoleBinding in NAMESPACE to ROLE`` or ``ClusterRoleBinding to ROLE``."""
    grants: dict[str, set[str]] = {}
    for call in calls:
        if call.starts("kubectl", "create", "rolebinding") or call.starts(
            "kubectl", "create", "clusterrolebinding"
        ):
            [subject] = call.flags("--user") + call.flags("--group")
            where = (
                f"RoleBinding in {call.flag('--namespace')}"
                if call.argv[2] == "rolebinding"
                else "ClusterRoleBinding"
            )
            grants.setdefault(subject, set()).add(f"{where} to {call.flag('--clusterrole')}")
    return grants


def google_grants(calls: list[Call]) -> dict[str, set[str]]:
    """Each service account's roles, and its bindings in the cluster (GKE's user is its email)."""
    grants: dict[str, set[str]] = {}
    for call in calls:
        members = [
            m.removeprefix("serviceAccount:")
            for m in call.flags("--member")
            if m.startswith("serviceAccount:")
        ]
        if call.argv[0] == "gcloud" and "add-iam-policy-binding" in call.argv and members:
            grants.setdefault(members[0], set()).add(call.flag("--role"))
    for subject, bindings in cluster_bindings(calls).items():
        grants.setdefault(subject, set()).update(bindings)
    return grants


#: How the overlay READMEs bind the deploy identity to k8s/deploy_role.py's two roles.
DEPLOY_BINDINGS = {
    "RoleBinding in ml-platform to ml-platform-deploy",  # only in the namespace the overlays deploy
    "ClusterRoleBinding to ml-platform-deploy-cluster",
}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_readmes_bind_the_deploy_identity_to_its_overlays_generated_roles(
    overlay: str, commands: dict[str, list[Call]]
) -> None:
    """Once bound to ``cluster-admin``; now to the roles of its deploy-role.yaml, applied first."""
    calls = commands[overlay]
    role_file = f"k8s/overlays/{overlay}/deploy-role.yaml"
    defined = {d["metadata"]["name"] for d in yaml.safe_load_all((ROOT / role_file).read_text()) if d}
    [applied] = [
        i for i, c in enumerate(calls) if c.starts("kubectl", "apply") and role_file in c.flags("-f")
    ]
    bound = [i for i, c in enumerate(calls) if c.starts("kubectl", "create")]
    assert bound
    assert applied < min(bound), "the roles are applied before they are bound"
    [(subject, bindings)] = cluster_bindings(calls).items()
    assert bindings == DEPLOY_BINDINGS
    assert {b.rsplit(" to ", 1)[1] for b in bindings} == defined
    if overlay == "gke":
        assert subject == variables(commands, "gke")["GCP_DEPLOY_SERVICE_ACCOUNT"]
    else:  # the group the deploy role's access entry puts it in, with no EKS access policy
        [entry] = [c for c in calls if c.starts("aws", "eks", "create-access-entry")]
        assert entry.flags("--kubernetes-groups") == [subject]
        assert not [c for c in calls if c.starts("aws", "eks", "associate-access-policy")]
    assert not [c for c in calls if "cluster-admin" in c.argv]


def test_each_google_service_account_may_do_its_workflows_work_alone(commands: dict[str, list[Call]]) -> None:
    """The push account may not reach the cluster, the deploy's may not push, the data readers may
    read the training folder and nothing else."""
    calls, set_to = commands["gke"], variables(commands, "gke")
    grants = google_grants(calls)
    assert grants[set_to["GCP_PUSH_SERVICE_ACCOUNT"]] == {"roles/artifactregistry.writer"}
    assert grants[set_to["GCP_DEPLOY_SERVICE_ACCOUNT"]] == {
        "roles/artifactregistry.reader",  # rollout.sh: gcloud artifacts docker images describe
        "roles/container.clusterViewer",  # get-gke-credentials
        *DEPLOY_BINDINGS,  # in the cluster: what rollout.sh does (k8s/deploy_role.py)
    }
    bucket, folder = (
        set_by_gh(calls, "variable")[("TRAINING_DATA_DIR", "training")].removeprefix("gs://").split("/", 1)
    )
    for reader in ("GCP_RETRAIN_SERVICE_ACCOUNT", "LOADTEST_GCP_SERVICE_ACCOUNT"):
        assert grants[set_to[reader]] == {"roles/storage.objectViewer"}
        [binding] = [c for c in calls if f"serviceAccount:{set_to[reader]}" in c.flags("--member")]
        assert binding.argv[:5] == [
            "gcloud",
            "storage",
            "buckets",
            "add-iam-policy-binding",
            f"gs://{bucket}",
        ]
        assert f'startsWith("projects/_/buckets/{bucket}/objects/{folder}/")' in binding.flag("--condition")


def role_grants(calls: list[Call]) -> dict[str, set[tuple[str, str]]]:
    """Each role's (action, resource) pairs, and its EKS access policies."""
    grants: dict[str, set[tuple[str, str]]] = {}
    for call in calls:
        if call.starts("aws", "iam", "put-role-policy"):
            for statement in call.document("--policy-document")["Statement"]:
                assert statement["Effect"] == "Allow"
                actions = (
                    statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                )
                for action in actions:
                    grants.setdefault(call.flag("--role-name"), set()).add((action, statement["Resource"]))
        if call.starts("aws", "eks", "associate-access-policy"):
            role = call.flag("--principal-arn").rsplit(":role/", 1)[1]
            grants.setdefault(role, set()).add((call.flag("--policy-arn"), call.flag("--access-scope")))
    return grants


def test_each_aws_role_may_do_its_workflows_work_alone(commands: dict[str, list[Call]]) -> None:
    calls, set_to = commands["eks"], variables(commands, "eks")
    grants = role_grants(calls)
    region, namespace, cluster = set_to["AWS_REGION"], set_to["ECR_NAMESPACE"], set_to["EKS_CLUSTER"]
    account = set_to["AWS_PUSH_ROLE_ARN"].split(":")[4]
    repositories = f"arn:aws:ecr:{region}:{account}:repository/{namespace}/*"

    def role(variable: str) -> str:
        return set_to[variable].rsplit(":role/", 1)[1]

    pushes = {"ecr:BatchCheckLayerAvailability", "ecr:InitiateLayerUpload", "ecr:UploadLayerPart"}
    pushes |= {
        "ecr:CompleteLayerUpload",
        "ecr:PutImage",
        "ecr:BatchGetImage",
    }  # BatchGetImage: the re-run's check
    assert grants[role("AWS_PUSH_ROLE_ARN")] == {("ecr:GetAuthorizationToken", "*")} | {
        (action, repositories) for action in pushes
    }
    assert grants[role("AWS_DEPLOY_ROLE_ARN")] == {
        # aws eks update-kubeconfig (deploy-eks.yml), then the cluster through an access entry's group
        ("eks:DescribeCluster", f"arn:aws:eks:{region}:{account}:cluster/{cluster}"),
        # amazon-ecr-login, then rollout.sh's aws ecr describe-images
        ("ecr:GetAuthorizationToken", "*"),
        ("ecr:DescribeImages", repositories),
    }
    assert "aws eks update-kubeconfig" in (WORKFLOWS / "deploy-eks.yml").read_text()
    [entry] = [c for c in calls if c.starts("aws", "eks", "create-access-entry")]
    assert (entry.flag("--cluster-name"), entry.flag("--principal-arn")) == (
        cluster,
        set_to["AWS_DEPLOY_ROLE_ARN"],
    )
    folder = set_by_gh(calls, "variable")[("TRAINING_DATA_DIR", "training")].removeprefix("s3://")
    for reader in ("AWS_RETRAIN_ROLE_ARN", "LOADTEST_AWS_ROLE_ARN"):
        assert grants[role(reader)] == {("s3:GetObject", f"arn:aws:s3:::{folder}/*")}


# --- Environments: who may enter them -----------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_environment_a_workflow_signs_in_from_admits_mains_runs_alone(
    overlay: str, commands: dict[str, list[Call]]
) -> None:
    """`loadtest` was made with "no reviewers, no branch rule": any branch's workflow could declare it
    and read the training data as its identity."""
    calls = commands[overlay]
    environments = {job.environment for job in JOBS if job.sign_ins() and job.environment}
    assert environments == {"production", "training", "loadtest"}
    for environment in environments:
        path = f"repos/{REPOSITORY}/environments/{environment}"
        [made] = [c for c in calls if c.starts("gh", "api") and c.flags("-X") == ["PUT"] and path in c.argv]
        settings = json.loads(made.stdin)
        assert settings["deployment_branch_policy"] == {
            "protected_branches": False,
            "custom_branch_policies": True,
        }
        assert bool(settings.get("reviewers")) == (environment != "loadtest")
        [branches] = [
            c for c in calls if c.starts("gh", "api") and f"{path}/deployment-branch-policies" in c.argv
        ]
        assert (branches.flag("-X"), branches.flags("-f")) == ("POST", ["name=main", "type=branch"])


# --- The registries: immutable tags, and the names the manifests and CI use ---------------------


def ci_images() -> set[str]:
    ci = yaml.safe_load((WORKFLOWS / "ci.yml").read_text())
    return {entry["image"] for entry in ci["jobs"]["images"]["strategy"]["matrix"]["include"]}


def values(overlay: str) -> dict[str, str]:
    """The overlay's values.yaml (a local-config ConfigMap)."""
    environment = yaml.safe_load((ROOT / "k8s" / "overlays" / overlay / "values.yaml").read_text())
    return dict(environment["data"])


def test_the_registries_are_made_with_immutable_tags_under_the_names_ci_pushes_to(
    commands: dict[str, list[Call]],
) -> None:
    """checkov's CKV_K8S_43 is skipped for "CI's commit SHA in a tag-immutable registry": the READMEs
    made both registries mutable."""
    [gar] = [c for c in commands["gke"] if c.starts("gcloud", "artifacts", "repositories", "create")]
    assert "--immutable-tags" in gar.argv
    assert variables(commands, "gke")["GAR_REGISTRY"] == values("gke")["imageRegistry"]
    assert values("gke")["imageRegistry"].endswith(f"/{gar.argv[4]}")
    ecr = [c for c in commands["eks"] if c.starts("aws", "ecr", "create-repository")]
    assert {c.flag("--image-tag-mutability") for c in ecr} == {"IMMUTABLE"}
    namespace = variables(commands, "eks")["ECR_NAMESPACE"]
    assert {c.flag("--repository-name") for c in ecr} == {f"{namespace}/{image}" for image in ci_images()}
    assert values("eks")["imageRegistry"].endswith(f"/{namespace}")


def test_the_mlflow_irsa_policy_is_made_and_lets_mlflow_use_its_bucket_alone(
    commands: dict[str, list[Call]],
) -> None:
    calls = commands["eks"]
    [bucket] = [c.argv[3].removeprefix("s3://") for c in calls if c.starts("aws", "s3", "mb")]
    [policy] = [c for c in calls if c.starts("aws", "iam", "create-policy")]
    statements = policy.document("--policy-document")["Statement"]
    assert {(str(s["Action"]), s["Resource"]) for s in statements} == {
        ("s3:ListBucket", f"arn:aws:s3:::{bucket}"),
        (str(["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]), f"arn:aws:s3:::{bucket}/*"),
    }
    assert values("eks")["artifactDestination"].startswith(f"s3://{bucket}/")
    account = variables(commands, "eks")["AWS_PUSH_ROLE_ARN"].split(":")[4]
    [irsa] = [c for c in calls if c.starts("eksctl", "create", "iamserviceaccount")]
    assert irsa.flag("--attach-policy-arn") == f"arn:aws:iam::{account}:policy/{policy.flag('--policy-name')}"
    # The role the rendered ServiceAccount names, for the ServiceAccount the MLflow pod runs as.
    rendered = render("eks")
    [account_object] = [
        o
        for o in rendered.of_kind("ServiceAccount")
        if (o["metadata"]["namespace"], o["metadata"]["name"])
        == (irsa.flag("--namespace"), irsa.flag("--name"))
    ]
    role_arn = account_object["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
    assert (
        role_arn
        == values("eks")["mlflowRoleArn"]
        == f"arn:aws:iam::{account}:role/{irsa.flag('--role-name')}"
    )
    assert rendered.get("Namespace", irsa.flag("--namespace"))


# --- The workflows: an unset identity is named, a re-run pushes no tag again --------------------


def test_an_unset_identity_stops_its_job_before_the_sign_in_naming_the_variable(tmp_path: Path) -> None:
    """After the split, a repository still holding only the old variable would fail in the sign-in
    action's own words; each job names the variable it misses before it signs in."""
    checked = 0
    for job in JOBS:
        for index, action, variable in job.sign_ins():
            before = job.body["steps"][:index]
            checks = [s for s in before if f"${{{{ vars.{variable} }}}}" in s.get("env", {}).values()]
            assert checks, f"{job}: nothing checks vars.{variable} before signing in"
            [step] = checks
            unset = next(key for key, value in step["env"].items() if value == f"${{{{ vars.{variable} }}}}")
            env = dict.fromkeys(step["env"], "set")
            if "DATA" in env:  # the training data's step: the bucket's cloud picks the identity
                env["DATA"] = (
                    "gs://bucket/path" if action == "google-github-actions/auth" else "s3://bucket/path"
                )
                env["EVENT"] = "schedule"
            status, said, _ = run_script(
                step["run"],
                tmp_path / f"{job.name}-{variable}",
                tmp_path,
                os.environ["PATH"],
                **{**env, unset: ""},
            )
            assert status == 1, f"{job}: {said}"
            [error] = [line for line in said.splitlines() if line.startswith("::error::")]
            assert variable in error, error
            assert "README" in error, error
            status, said, _ = run_script(
                step["run"], tmp_path / f"{job.name}-{variable}-set", tmp_path, os.environ["PATH"], **env
            )
            assert status == 0, f"{job}: {said}"
            checked += 1
    assert checked == 8  # CI (2), the two deploys, Retrain (2), the load test (2)


def test_a_rerun_of_the_images_job_pushes_no_tag_the_registry_has(tmp_path: Path) -> None:
    """With immutable tags a second push of <image>:<sha> is refused: a re-run of the job for the
    same commit (its ECR push failed, say) would fail on the registry that took the first."""
    images = next(job for job in JOBS if job.workflow == "ci.yml" and job.name == "images")
    [push] = [s for s in images.body["steps"] if "docker push" in s.get("run", "")]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "docker-calls"
    docker = bin_dir / "docker"
    # `docker manifest inspect` finds what $EXISTING lists; every call is recorded.
    docker.write_text(
        f'#!/bin/bash\necho "$*" >>"{calls}"\n'
        'if [ "$1 $2" = "manifest inspect" ]; then grep -qxF "$3" <<<"$EXISTING"; fi\n'
    )
    docker.chmod(0o755)
    gar, ecr = "europe-west1-docker.pkg.dev/p/ml-platform", "1.dkr.ecr.eu-west-1.amazonaws.com/ml-platform"
    env = {"GAR_REGISTRY": gar, "ECR_REPOSITORY": ecr, "GCP_TOKEN": "token", "IMAGE": "bankchurn:abc"}
    env |= {"SERVICE": "bankchurn", "GITHUB_SHA": "abc", "EXISTING": f"{gar}/bankchurn:abc"}
    status, said, _ = run_script(
        push["run"], tmp_path / "work", tmp_path, f"{bin_dir}{os.pathsep}{os.environ['PATH']}", **env
    )
    assert status == 0, said
    pushed = [line.split()[1] for line in calls.read_text().splitlines() if line.startswith("push ")]
    assert pushed == [f"{ecr}/bankchurn:abc"]
    assert f"{gar}/bankchurn:abc is already in the registry" in said


def test_the_images_job_records_the_digest_of_each_image_it_pushed_in_its_summary(tmp_path: Path) -> None:
    """The Dockerfile said CI resolves and records digests, and CI recorded none: each pushed tag's
    digest, as each registry answers, is now in the job summary, and the Dockerfile says only that."""
    images = next(job for job in JOBS if job.workflow == "ci.yml" and job.name == "images")
    steps = images.body["steps"]
    [push] = [i for i, s in enumerate(steps) if "docker push" in s.get("run", "")]
    [record] = [i for i, s in enumerate(steps) if "GITHUB_STEP_SUMMARY" in s.get("run", "")]
    assert record > push
    assert steps[record]["if"] == steps[push]["if"]
    assert {k: steps[record]["env"][k] for k in ("GAR_REGISTRY", "ECR_REPOSITORY")} == {
        k: steps[push]["env"][k] for k in ("GAR_REGISTRY", "ECR_REPOSITORY")
    }
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # `docker buildx imagetools inspect REF --format ...`: the digest $DIGESTS gives REF (REF=DIGEST lines).
    (bin_dir / "docker").write_text(
        '#!/bin/bash\n[ "$1 $2 $3" = "buildx imagetools inspect" ] || exit 2\n'
        'grep -F "$4=" <<<"$DIGESTS" | cut -d= -f2\n'
    )
    (bin_dir / "docker").chmod(0o755)
    gar, ecr = "europe-west1-docker.pkg.dev/p/ml-platform", "1.dkr.ecr.eu-west-1.amazonaws.com/ml-platform"
    digests = {f"{gar}/bankchurn:abc": "sha256:" + "1" * 64, f"{ecr}/bankchurn:abc": "sha256:" + "2" * 64}
    summary = tmp_path / "summary.md"
    env = {"GAR_REGISTRY": gar, "ECR_REPOSITORY": ecr, "SERVICE": "bankchurn", "GITHUB_SHA": "abc"}
    env |= {"GITHUB_STEP_SUMMARY": str(summary)}
    path = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"
    status, said, _ = run_script(
        steps[record]["run"],
        tmp_path / "work",
        tmp_path,
        path,
        **env,
        DIGESTS="\n".join(f"{ref}={digest}" for ref, digest in digests.items()),
    )
    assert status == 0, said
    assert said.splitlines() == [f"{ref}@{digest}" for ref, digest in digests.items()]
    assert summary.read_text().splitlines() == [
        "### bankchurn",
        "",
        "| image | digest |",
        "| --- | --- |",
        *(f"| `{ref}` | `{digest}` |" for ref, digest in digests.items()),
    ]
    # A registry that names no digest fails the job, saying which.
    status, said, _ = run_script(
        steps[record]["run"],
        tmp_path / "none",
        tmp_path,
        path,
        **env,
        DIGESTS=f"{gar}/bankchurn:abc=sha256:1",
    )
    assert status == 1
    [error] = [line for line in said.splitlines() if line.startswith("::error::")]
    assert error.startswith(f"::error::the registry gave no digest for {gar}/bankchurn:abc")
    # The Dockerfile's header says what CI does with digests, and nothing it does not.
    header = "".join(
        line for line in (ROOT / "Dockerfile").read_text().splitlines(keepends=True) if line.startswith("#")
    )
    assert "resolves" not in header
    assert "digest of each image it pushes" in header
    assert "summary" in header
