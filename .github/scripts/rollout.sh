#!/usr/bin/env bash
# Deploy the platform's images (the model services and MLflow) at one tag to the cluster of the
# current kubectl context, roll back automatically if the apply, the rollout or the smoke test fails.
#   rollout.sh OVERLAY_DIR IMAGE_REGISTRY TAG BASE_URL
# OVERLAY_DIR: k8s/overlays/gke|eks; BASE_URL: the ingress, e.g. https://ml.example.com
# SMOKE_API_KEY_BANKCHURN, SMOKE_API_KEY_NLPINSIGHT, SMOKE_API_KEY_CHICAGOTAXI: a key of each
# service (`mlp api-key deploy-smoke --append keys-<svc>`, the overlay READMEs), for the smoke
# prediction: every route the Ingress publishes but the docs needs one.
# IMAGE_CHECK: how to ask the registry whether an image exists: `ecr` (aws ecr describe-images),
# `gar` (gcloud artifacts docker images describe), or `skopeo` (the default: skopeo inspect, with
# the credentials of a docker or skopeo login); each with the credentials the workflow set up.
# ROLLOUT_TIMEOUT (300s): each Deployment's wait; MLFLOW_ROLLOUT_TIMEOUT (600s): MLflow's, below.
# APPLY_RETRY_SECONDS (10): a failed apply is tried again after this, then twice this.
set -euo pipefail
overlay=$1 registry=$2 tag=$3 base_url=$4
namespace=${NAMESPACE:-ml-platform}
timeout=${ROLLOUT_TIMEOUT:-300s}
# The forward-only Deployments' (MLflow's) wait: its startupProbe alone allows 60 x 5 s = 300 s
# (mlflow/k8s/mlflow.yaml), after Recreate's grace period for the old pod, its ReadWriteOnce volume
# moving to the new pod's node, the image pull and the migration. ROLLOUT_TIMEOUT timed out an
# MLFLOW_VERSION bump on its way, and cost a rollback of what it had migrated.
mlflow_timeout=${MLFLOW_ROLLOUT_TIMEOUT:-600s}
services=(bankchurn nlpinsight chicagotaxi)

# 0. What the smoke test needs, before anything changes: a missing key is the workflow's setup,
#    not the release's fault, and must not cost a rollback.
missing=()
for svc in "${services[@]}"; do
  var=SMOKE_API_KEY_${svc^^}
  [ -n "${!var:-}" ] || missing+=("$var")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "::error::no smoke API key in ${missing[*]}: set each as a secret of the production environment (a key of that service, made with \`mlp api-key deploy-smoke --append keys-<service>\`; the overlay README's \"Deploy from CI\"); nothing was applied"
  exit 1
fi
# Docker's grammar for both: they are written into values.yaml below, and must stay a value there.
[[ $registry =~ ^[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9._-]+)*$ ]] || { echo "::error::IMAGE_REGISTRY=$registry is not a registry path"; exit 1; }
[[ $tag =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]] || { echo "::error::TAG=$tag is not an image tag"; exit 1; }

# 1. Images at the commit SHA: the overlay's values.yaml, whose replacements copy imageRegistry and
#    imageTag into every Deployment (the images transformer is not used: k8s/README, "Images").
#    In this checkout only: the committed values.yaml keeps its tag, which a hand apply would
#    roll back to (the overlay READMEs, "Deploy from CI").
sed -i -E "s|^(  imageRegistry:).*|\1 $registry|; s|^(  imageTag:).*|\1 \"$tag\"|" "$overlay/values.yaml"
rendered=$(mktemp)
answer=$(mktemp)
trap 'rm -f "$rendered" "$rendered.objects" "$answer"' EXIT
# The renderer make k8s-check validates (kubectl's kustomize), not another version of it.
kubectl kustomize "$overlay" >"$rendered"
# The namespace is a cluster administrator's, not the deploy's: its pod-security labels are what
# keeps a pod it deploys from being privileged (k8s/base/namespace.yaml), and an identity that could
# patch them could run one on a node. So the deploy identity may only read it (k8s/deploy_role.py),
# the Namespace is left out of what is applied (an apply server-side would patch it, changed or
# not), and the deploy stops unless the namespace is there with the labels the overlay gives it.
# Its pod-security labels in the render, one KEY=VALUE a line; kind and metadata first.
wanted=$(awk '
  /^---$/ { kind = ""; labels = 0; next }
  /^kind: / { kind = $2 }
  kind == "Namespace" && /^  labels:$/ { labels = 1; next }
  kind == "Namespace" && labels && /^    / {
    if ($1 ~ /^pod-security\.kubernetes\.io\//) { sub(/:$/, "", $1); gsub(/"/, "", $2); print $1 "=" $2 }
    next
  }
  { labels = 0 }
' "$rendered")
admin="a cluster administrator creates or fixes it with kubectl apply --server-side -f k8s/base/namespace.yaml (the overlay README's \"Configure and deploy\"); the deploy identity may not change it, and nothing was applied"
held=$(kubectl get namespace "$namespace" --ignore-not-found -o jsonpath='{.metadata.labels}') \
  || { echo "::error::the cluster did not say whether namespace $namespace exists (kubectl's error above); nothing was applied"; exit 1; }
[ -n "$held" ] || { echo "::error::no namespace $namespace in the cluster: $admin"; exit 1; }
held=$(jq -r 'to_entries[] | "\(.key)=\(.value)"' <<<"$held")
unlike=()
[ -z "$wanted" ] || mapfile -t unlike < <(grep -vxF -f <(printf '%s\n' "$held") <<<"$wanted" || true)
if [ ${#unlike[@]} -gt 0 ]; then
  have=$(grep '^pod-security\.kubernetes\.io/' <<<"$held" | paste -sd' ' -) || true
  echo "::error::namespace $namespace is not labelled ${unlike[*]} as k8s/base/namespace.yaml has it (its pod-security labels: ${have:-none}): $admin"
  exit 1
fi
# What is applied: every object rendered but the Namespace (kubectl kustomize's `---` between them).
# An object's lines before its kind are held in an array, not one string grown line by line: a
# ConfigMap's data comes before its kind, and growing a string copies it (2 s for the dashboards).
awk '
  function emit(  i) { if (kept++) print "---"; for (i = 1; i <= held; i++) print line[i] }
  /^---$/ { held = decided = skip = 0; next }
  decided { if (!skip) print; next }
  { line[++held] = $0 }
  /^kind: / { decided = 1; skip = $2 == "Namespace"; if (!skip) emit() }
  END { if (!decided && held) emit() }
' "$rendered" >"$rendered.objects"
mv "$rendered.objects" "$rendered"
# The release, read from what is applied rather than listed here (a new component is not left
# out): every image at the tag in CI's registry, and each Deployment running one, whose pod
# template so changes with every deploy. Only these are waited for and undone: an undo of another
# (Grafana, kube-state-metrics) would take it back a revision of its own, not this deploy's.
# A Deployment annotated ml-platform.io/undo-once-ready: "false" (MLflow, whose new pods migrate
# its database in an init container named db-upgrade) is waited for first, and once ready is not
# undone: its previous version may refuse the schema. Nor is it undone, ready or not, once its
# db-upgrade ran (rollback, below). Reads kubectl kustomize's output: `---` between objects, kind
# and metadata first.
# One line per such image: KIND NAME IMAGE forward-only|undoable.
release=$(awk -v registry="$registry/" -v tag=":$tag" '
  /^---$/ { kind = name = ""; forward_only = 0; next }
  /^kind: / { kind = $2 }
  /^  name: / && name == "" { name = $2 }
  /^    ml-platform\.io\/undo-once-ready: "false"$/ { forward_only = 1 }
  /^[ -]*image: / && index($NF, registry) == 1 && substr($NF, length($NF) - length(tag) + 1) == tag {
    print kind, name, $NF, (forward_only ? "forward-only" : "undoable")
  }
' "$rendered")
for svc in "${services[@]}"; do  # the smoke test's, below
  grep -qxF "Deployment $svc $registry/$svc:$tag undoable" <<<"$release" \
    || { echo "::error::$svc is not at $registry/$svc:$tag in the rendered $overlay"; exit 1; }
done
mapfile -t images < <(awk '!seen[$3]++ { print $3 }' <<<"$release")
mapfile -t forward_only < <(awk '$1 == "Deployment" && $4 == "forward-only" && !seen[$2]++ { print $2 }' <<<"$release")
mapfile -t undoable < <(awk '$1 == "Deployment" && $4 == "undoable" && !seen[$2]++ { print $2 }' <<<"$release")

# Every image in the registry: one CI did not push there (another registry than CI's, a commit it
# did not build) is no release's fault, and would only show after ROLLOUT_TIMEOUT of ImagePullBackOff.
image_exists() {  # $1: registry/repository:tag; the tool's own error, if any, on stderr
  case ${IMAGE_CHECK:-skopeo} in
    ecr)  # ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPOSITORY:TAG
      local host=${1%%/*} path=${1#*/}
      local region=${host#*.dkr.ecr.}
      aws ecr describe-images --registry-id "${host%%.*}" --region "${region%%.*}" \
        --repository-name "${path%:*}" --image-ids "imageTag=${path##*:}" ;;
    gar) gcloud artifacts docker images describe "$1" ;;
    skopeo) skopeo inspect --raw "docker://$1" ;;
    *) echo "IMAGE_CHECK=$IMAGE_CHECK is not ecr, gar or skopeo" >&2; return 2 ;;
  esac >/dev/null
}
absent=()
for image in "${images[@]}"; do
  image_exists "$image" || absent+=("$image")
done
if [ ${#absent[@]} -gt 0 ]; then
  echo "::error::no image ${absent[*]} (IMAGE_CHECK=${IMAGE_CHECK:-skopeo}; its error above): CI pushes each commit of main that passed it; is IMAGE_REGISTRY the registry CI pushes to, and did its image job push this commit? Nothing was applied"
  exit 1
fi

timeout_of() {  # $1: a Deployment
  if [[ " ${forward_only[*]} " == *" $1 "* ]]; then echo "$mlflow_timeout"; else echo "$timeout"; fi
}

# How far the db-upgrade init container of a Deployment's current revision got, as the cluster
# reports it: `ran` (running, or exited 0, in any pod of that revision), `failed` (exited non-zero),
# `not-started`, or `unknown` (kubectl failed). The current revision's pods are those of its
# ReplicaSet of the highest revision (the Deployment's own): with Recreate an old pod may still be
# terminating, its db-upgrade exited 0 a deploy ago. A pod of that revision deleted since (its node
# drained or preempted) took its statuses with it, and its replacement may not have started: the
# kubelet's event of its db-upgrade starting outlives it (an hour, the API server's default).
db_upgrade_of() {
  local replicasets replicaset pods events
  replicasets=$(kubectl -n "$namespace" get replicasets -o jsonpath='{range .items[*]}{.metadata.ownerReferences[0].name}{" "}{.metadata.annotations.deployment\.kubernetes\.io/revision}{" "}{.metadata.name}{"\n"}{end}') \
    || { echo unknown; return; }
  replicaset=$(awk -v deployment="$1" '$1 == deployment && $2 + 0 > max + 0 { max = $2; name = $3 } END { print name }' <<<"$replicasets")
  # OWNER|running since|exit code|exit code before a restart (a failed init container is retried).
  pods=$(kubectl -n "$namespace" get pods -o jsonpath='{range .items[*]}{.metadata.ownerReferences[0].name}{"|"}{.status.initContainerStatuses[?(@.name=="db-upgrade")].state.running.startedAt}{"|"}{.status.initContainerStatuses[?(@.name=="db-upgrade")].state.terminated.exitCode}{"|"}{.status.initContainerStatuses[?(@.name=="db-upgrade")].lastState.terminated.exitCode}{"\n"}{end}') \
    || { echo unknown; return; }
  if awk -F'|' -v replicaset="$replicaset" '
    $1 != replicaset || replicaset == "" { next }
    $2 != "" || $3 != "" || $4 != "" { ran = 1 }
    END { exit !ran }
  ' <<<"$pods"; then
    echo ran
    return
  fi
  # POD|FIELD|REASON of each event: a pod of the ReplicaSet is named REPLICASET-SUFFIX.
  events=$(kubectl -n "$namespace" get events -o jsonpath='{range .items[*]}{.involvedObject.name}{"|"}{.involvedObject.fieldPath}{"|"}{.reason}{"\n"}{end}') \
    || { echo unknown; return; }
  awk -F'|' -v replicaset="$replicaset" '
    replicaset != "" && index($1, replicaset "-") == 1 && substr($1, length(replicaset) + 2) !~ /-/ \
      && $2 == "spec.initContainers{db-upgrade}" && $3 == "Started" { ran = 1 }
    END { print ran ? "ran" : "not-started" }
  ' <<<"$events"
}

# Each Deployment's generation and revision: NAME GENERATION REVISION, one line each. The API
# server bumps a Deployment's generation in the request that changes its spec, so it tells which
# ones an apply changed at once; the controller sets the revision later, settled before the apply.
deployments() {
  kubectl -n "$namespace" get deployments -o jsonpath='{range .items[*]}{.metadata.name}{" "}{.metadata.generation}{" "}{.metadata.annotations.deployment\.kubernetes\.io/revision}{"\n"}{end}'
}
before=""  # deployments() before the apply

ready=()  # the forward-only Deployments that rolled out: a prefix of forward_only (waited in order)
# Undo what this deploy changed, and only that, to the revision each Deployment was at before it:
# an undo of a Deployment it left as it was (a deploy again of the tag already there, an apply
# that failed before reaching it) took that one back to the deploy before, and `rollout undo`
# alone goes back one revision from wherever the Deployment is.
rollback() {
  echo "::error::$1; rolling back"
  local deployment now changed undo=()
  if now=$(deployments); then
    # Changed: new since the apply, or its generation moved.
    changed=$(awk 'NR == FNR { generation[$1] = $2; next } !($1 in generation) || generation[$1] != $2 { print $1 }' \
      <(printf '%s\n' "$before") <(printf '%s\n' "$now"))
  else
    # Each then, undone to its revision before: an undo of one the apply left as it was is a no-op.
    echo "::warning::the cluster did not say which Deployments this deploy changed (kubectl's error above): each of the release's is taken back to its revision before the deploy"
    changed=$(printf '%s\n' "${forward_only[@]}" "${undoable[@]}")
  fi
  for deployment in "${forward_only[@]}" "${undoable[@]}"; do
    grep -qxF "$deployment" <<<"$changed" || echo "deployment/$deployment: unchanged by this deploy, left as it is"
  done
  for deployment in "${ready[@]}"; do
    grep -qxF "$deployment" <<<"$changed" || continue
    echo "::warning::deployment/$deployment stays at $tag: it rolled out, and its previous version may refuse what this one migrated (its ml-platform.io/undo-once-ready annotation); undo it by hand if that one is known to run on it"
  done
  # Not rolled out: undone only if its migration never started, when the previous version still
  # reads the database. After one that succeeded, the previous version refuses the schema (its
  # check is an equality) and crash-loops; an undo during one kills it part-way, and one that
  # failed (an error at revision k of n, OOMKilled, a node preempted) may have left the schema part
  # migrated, as SQLite's DDL is not transactional in alembic: a person decides those.
  local check
  for deployment in "${forward_only[@]:${#ready[@]}}"; do
    grep -qxF "$deployment" <<<"$changed" || continue
    check="check kubectl -n $namespace logs deploy/$deployment -c db-upgrade (the migration) and kubectl -n $namespace logs deploy/$deployment (the server)"
    case $(db_upgrade_of "$deployment") in
      not-started)
        echo "deployment/$deployment: its new pod's db-upgrade never started, so its previous version still reads the database: undone"
        undo+=("$deployment") ;;
      ran) echo "::warning::deployment/$deployment stays at $tag: its new pod's db-upgrade started (it exited, 0 or not, or is still running), so its database may be migrated, in full or in part, which its previous version refuses; $check, and undo it by hand only if the database is still at the previous version's schema" ;;
      *) echo "::warning::deployment/$deployment stays at $tag: the cluster did not say whether its new pod's db-upgrade ran (kubectl's error above), and its database may already be migrated; $check" ;;
    esac
  done
  for deployment in "${undoable[@]}"; do
    if grep -qxF "$deployment" <<<"$changed"; then undo+=("$deployment"); fi
  done
  local revision undone=()
  for deployment in "${undo[@]}"; do
    revision=$(awk -v deployment="$deployment" '$1 == deployment { print $3 }' <<<"$before")
    if [ -z "$revision" ]; then
      echo "::warning::deployment/$deployment is new in this deploy: there is no earlier revision to take it back to, and it stays at $tag (kubectl -n $namespace delete deployment/$deployment, if it should not run)"
      continue
    fi
    kubectl -n "$namespace" rollout undo "deployment/$deployment" --to-revision="$revision" || true
    undone+=("$deployment")
  done
  for deployment in "${undone[@]}"; do
    kubectl -n "$namespace" rollout status "deployment/$deployment" --timeout="$(timeout_of "$deployment")" || true
  done
  exit 1
}

# 2. The apply: server-side, since the generated dashboards ConfigMap is larger than the 256 KiB
#    of annotations a client-side apply would copy it into (last-applied-configuration). The field
#    manager is the one `kubectl apply -k … --server-side` of the READMEs uses, so a deploy and a
#    hand apply own the same fields and a field dropped from the manifests leaves the cluster
#    either way; forced, since the manifests are the truth over a `rollout undo`'s or a hand edit's.
apply=(kubectl apply --server-side --field-manager=kubectl --force-conflicts)
#    The cluster's verdict on the whole of it first, changing nothing: a server-side dry run goes
#    through authorization (the deploy identity's roles), admission and validation as the apply
#    does. Refused part-way, the apply itself would leave some Deployments at the new tag, with
#    nothing waited for or undone; refused here, nothing is applied.
if ! "${apply[@]}" --dry-run=server -f "$rendered"; then
  echo "::error::the cluster refused the apply in a dry run (kubectl's error above), so nothing was applied: a \"forbidden\" is the deploy identity's roles, which an overlay that adds a component needs made again (make deploy-roles), committed and applied by a cluster administrator (the overlay README's \"Identities for CI\")"
  exit 1
fi

# 3. Apply, up to three times: the dry run passed, so a failure now is the API server's moment (an
#    etcd leader election, a webhook timing out), and an apply server-side can be run again as is.
#    The third failure undoes the Deployments the failed applies changed, as a failed rollout does.
before=$(deployments) || {
  echo "::error::the cluster did not list its Deployments (kubectl's error above), which a rollback needs to take each back to its revision before the deploy; nothing was applied"
  exit 1
}
for attempt in 1 2 3; do
  "${apply[@]}" -f "$rendered" && break
  if [ "$attempt" -eq 3 ]; then
    rollback "the apply failed three times after its dry run passed (kubectl's errors above); the other objects they reached (ConfigMaps, Services, ...) stay as the manifests at $tag have them"
  fi
  delay=$((attempt * ${APPLY_RETRY_SECONDS:-10}))
  echo "::warning::the apply failed (kubectl's error above); trying again in $delay s"
  sleep "$delay"
done
# Wait: every new pod ready (its /readyz; on EKS also its ALB target healthy, the readiness gate;
# MLflow's /health, after its database migration). MLflow first: the model servers load from it.
for deployment in "${forward_only[@]}" "${undoable[@]}"; do
  deployment_timeout=$(timeout_of "$deployment")
  kubectl -n "$namespace" rollout status "deployment/$deployment" --timeout="$deployment_timeout" \
    || rollback "deployment/$deployment did not roll out within $deployment_timeout"
  [[ " ${forward_only[*]} " != *" $deployment "* ]] || ready+=("$deployment")
done

# 4. Smoke test through the ingress, which routes only the API (not /readyz, answered above): one
#    prediction per service, its OpenAPI example, with the service's smoke key.
for svc in "${services[@]}"; do
  url="$base_url/$svc"
  example=$(curl -fsS --max-time 10 --retry 10 --retry-delay 6 --retry-all-errors "$url/openapi.json" \
    | jq -ce '.components.schemas | to_entries | map(select(.value.examples)) | .[0].value.examples[0]') \
    || rollback "$svc: no request example in $url/openapi.json"
  var=SMOKE_API_KEY_${svc^^}
  # The key through standard input, never on a command line. The answer file emptied first: with
  # no answer (refused, reset, timed out) curl leaves it as it was, the previous service's answer.
  : >"$answer"
  status=$(printf 'authorization: Bearer %s\n' "${!var}" \
    | curl -sS --max-time 10 --retry 3 --retry-delay 2 -o "$answer" -w '%{http_code}' \
      -H @- -H 'content-type: application/json' -d "$example" "$url/predict") || status=000
  case $status in
    200) jq -e .model.version "$answer" >/dev/null || rollback "$svc: POST $url/predict answered 200 without a model version" ;;
    000) rollback "$svc: POST $url/predict got no answer (curl's error above)" ;;
    401 | 403) rollback "$svc: POST $url/predict refused $var ($status: $(head -c 300 "$answer")): is it expired, revoked, or not a line of the $svc-api-keys Secret?" ;;
    *) rollback "$svc: POST $url/predict answered $status: $(head -c 300 "$answer")" ;;
  esac
  echo "$svc: ready and predicting at $tag"
done
