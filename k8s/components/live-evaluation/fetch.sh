#!/bin/sh
# The live evaluation's first step: copy the captured answers of the last $DAYS days (UTC) and the
# service's truth file from the bucket into /work, where `mlp evaluate` reads them.
#
#   CAPTURES      where the log sink writes the capture lines, by date: gs://<bucket>/stderr (Cloud
#                 Logging's sink to Cloud Storage: <log name>/YYYY/MM/DD/<hours>_S0.json; the
#                 pods log to stderr) or
#                 s3://<bucket>/<prefix> (Firehose: <prefix>/YYYY/MM/DD/HH/<object>, gzipped)
#   TRUTH_PREFIX  where the truth files are; the service's is $TRUTH_PREFIX/$TRUTH_FILE
#   TRUTH_FILE    e.g. bankchurn.csv (request_id, the target column, instance)
#   DAYS          how many days back, today included: as far back as the truth file reaches
#   WORK          where to copy (default /work): $WORK/captures/YYYY/MM/DD/..., $WORK/truth.csv
#
# The copy runs with the cloud's own CLI (gcloud storage, aws s3) and the pod's identity: GKE
# Workload Identity Federation or EKS Pod Identity, granted read on these two prefixes only.
set -eu

: "${CAPTURES:?}" "${TRUTH_PREFIX:?}" "${TRUTH_FILE:?}" "${DAYS:?}"
work=${WORK:-/work}
captures=${CAPTURES%/}
truth="${TRUTH_PREFIX%/}/${TRUTH_FILE}"

# Both are checked before anything is copied.
for setting in "CAPTURES=$CAPTURES" "TRUTH_PREFIX=$TRUTH_PREFIX"; do
    case "${setting#*=}" in
        gs://* | s3://*) ;;
        *) echo "fetch: $setting: not a gs:// or s3:// URL" >&2; exit 2 ;;
    esac
done

# Copy one prefix recursively; a day without captures copies nothing and is not an error.
copy_day() {
    case "$1" in
        s3://*) aws s3 cp --recursive --only-show-errors "$1/" "$2/" ;;
        gs://*)
            # gcloud fails on a prefix without objects: tell that apart from a refusal.
            if ! listed=$(gcloud storage ls "$1/" 2>&1); then
                case "$listed" in
                    *"matched no objects"*) return 0 ;;
                    *) echo "$listed" >&2; return 1 ;;
                esac
            fi
            mkdir -p "$2"
            gcloud storage cp --recursive --no-user-output-enabled "$1/*" "$2/"
            ;;
    esac
}

copy_file() {
    case "$1" in
        s3://*) aws s3 cp --only-show-errors "$1" "$2" ;;
        gs://*) gcloud storage cp --no-user-output-enabled "$1" "$2" ;;
    esac
}

# NOW (seconds since the epoch) only for tests: which days "the last $DAYS" are.
now=${NOW:-$(date -u +%s)}
day=0
while [ "$day" -lt "$DAYS" ]; do
    path=$(date -u -d "@$((now - day * 86400))" +%Y/%m/%d)
    copy_day "$captures/$path" "$work/captures/$path"
    day=$((day + 1))
done
mkdir -p "$work/captures"
copy_file "$truth" "$work/truth.csv"

files=$(find "$work/captures" -type f | wc -l)
echo "fetch: $files capture file(s) of the last $DAYS day(s) from $captures, and $truth"
