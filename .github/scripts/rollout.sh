#!/usr/bin/env bash
# Deploy the model services at one image tag to the cluster of the current kubectl context,
# roll back automatically if the rollout or the smoke test fails.
#   rollout.sh OVERLAY_DIR IMAGE_REGISTRY TAG BASE_URL
# OVERLAY_DIR: k8s/overlays/gke|eks; BASE_URL: the ingress, e.g. https://ml.example.com
set -euo pipefail
overlay=$1 registry=$2 tag=$3 base_url=$4
namespace=${NAMESPACE:-ml-platform}
timeout=${ROLLOUT_TIMEOUT:-300s}
services=(bankchurn nlpinsight chicagotaxi)

# 1. Images at the commit SHA. `kustomize edit set image` for the images transformer, and the
#    overlay's values.yaml imageTag, which its replacements copy into the Deployments.
(
  cd "$overlay"
  for svc in "${services[@]}"; do
    kustomize edit set image "$svc=$registry/$svc:$tag" "$registry/$svc=$registry/$svc:$tag"
  done
  TAG=$tag yq -i '(select(.kind == "ConfigMap" and .metadata.name == "environment") | .data.imageTag) = strenv(TAG)' values.yaml
)
rendered=$(mktemp)
kustomize build "$overlay" >"$rendered"
for svc in "${services[@]}"; do
  grep -q "image: $registry/$svc:$tag\$" "$rendered" || { echo "::error::$svc is not at $tag after set image"; exit 1; }
done

rollback() {
  echo "::error::$1; rolling back"
  for svc in "${services[@]}"; do
    kubectl -n "$namespace" rollout undo "deployment/$svc" || true
  done
  for svc in "${services[@]}"; do
    kubectl -n "$namespace" rollout status "deployment/$svc" --timeout="$timeout" || true
  done
  exit 1
}

# 2. Apply and wait; a rollout that does not finish in time fails the job.
kubectl apply -f "$rendered"
for svc in "${services[@]}"; do
  kubectl -n "$namespace" rollout status "deployment/$svc" --timeout="$timeout" \
    || rollback "deployment/$svc did not roll out within $timeout"
done

# 3. Smoke test through the ingress: ready, and one prediction per service (its OpenAPI example).
for svc in "${services[@]}"; do
  url="$base_url/$svc"
  curl -fsS --max-time 10 --retry 10 --retry-delay 6 --retry-all-errors "$url/readyz" >/dev/null \
    || rollback "$svc: $url/readyz is not 200"
  example=$(curl -fsS --max-time 10 --retry 3 "$url/openapi.json" \
    | jq -c --arg s "$svc" '.components.schemas | to_entries | map(select(.value.examples)) | .[0].value.examples[0]') \
    || rollback "$svc: no request example in $url/openapi.json"
  curl -fsS --max-time 10 --retry 3 -H 'content-type: application/json' -d "$example" "$url/predict" | jq -e . >/dev/null \
    || rollback "$svc: POST $url/predict failed"
  echo "$svc: ready and predicting at $tag"
done
