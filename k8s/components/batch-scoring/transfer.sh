#!/bin/sh
# The batch scoring's first and last steps, with the cloud's own CLI (gcloud storage, aws s3) and the
# pod's identity (GKE Workload Identity Federation, EKS Pod Identity): read on the input prefix,
# write on the output prefix, nothing else.
#
#   transfer.sh fetch    copy the service's table, every object under $INPUT/$SERVICE/ (a warehouse's
#                        export: BigQuery's 000000000000.parquet, ...; Spark's part-*.parquet), into
#                        $WORK/input, make $WORK/output for the scores (mlp score makes no
#                        directory), and note the run's date in $WORK/run-date
#   transfer.sh upload   copy $WORK/output/$SCORES and the run's summary.json (mlp score --summary:
#                        the version, the rows scored and rejected) to
#                        $OUTPUT/$SERVICE/run_date=<the run's date>/, then an empty _SUCCESS beside
#                        them, last: a reader waiting for the marker never reads a partial run (a
#                        run of the same day again replaces all three)
#
#   INPUT, OUTPUT  gs://<bucket>/<prefix> or s3://<bucket>/<prefix>
#   INPUT_MARKER   optional: an object the exporter writes under $INPUT/$SERVICE/ once it is done
#                  (Spark's and Glue's _SUCCESS); fetch waits for it, polling every
#                  INPUT_MARKER_POLL_SECONDS (60) for at most INPUT_MARKER_WAIT_SECONDS (3600),
#                  so an export still being written is never scored in part
#   SERVICE        e.g. bankchurn
#   SCORES         the scores' file name (default scores.parquet), as `mlp score --output` wrote it
#   WORK           default /work
#   NOW            seconds since the epoch, only for tests: the run's date
set -eu

step=${1:?usage: transfer.sh fetch|upload}
: "${SERVICE:?}"
work=${WORK:-/work}

# Checked before anything is copied, in this shell (an exit in $(...) would end only a subshell).
check_url() {
    case "$2" in
        gs://* | s3://*) ;;
        *) echo "$step: $1=$2: not a gs:// or s3:// URL" >&2; exit 2 ;;
    esac
}

# Whether the object $1 exists: 0 yes, 1 no; a refusal (403, a network error) ends the step, which
# is retried, rather than passing for an object not there yet.
exists() {
    case "$1" in
        s3://*)
            path=${1#s3://}
            found=$(aws s3api head-object --bucket "${path%%/*}" --key "${path#*/}" 2>&1) && return 0
            ;;
        gs://*) found=$(gcloud storage objects describe "$1" 2>&1) && return 0 ;;
    esac
    case "$found" in
        *"(404)"* | *"Not Found"* | *NotFound* | *"matched no objects"*) return 1 ;;
        *) echo "$found" >&2; exit 1 ;;
    esac
}

wait_for_marker() {
    [ -n "${INPUT_MARKER:-}" ] || return 0
    poll=${INPUT_MARKER_POLL_SECONDS:-60}
    limit=${INPUT_MARKER_WAIT_SECONDS:-3600}
    waited=0
    until exists "$1/$INPUT_MARKER"; do
        if [ "$waited" -ge "$limit" ]; then
            # The export is late or failed: scoring what is there would score part of a table.
            echo "fetch: $1/$INPUT_MARKER did not appear within $limit s: is the export late, or did it fail?" >&2
            exit 2
        fi
        sleep "$poll"
        waited=$((waited + poll))
    done
    [ "$waited" -eq 0 ] || echo "fetch: $1/$INPUT_MARKER appeared after about $waited s"
}

case "$step" in
    fetch)
        check_url INPUT "${INPUT:?}"
        source=${INPUT%/}/$SERVICE
        wait_for_marker "$source"
        mkdir -p "$work/input"
        case "$source" in
            s3://*) aws s3 cp --recursive --only-show-errors "$source/" "$work/input/" ;;
            gs://*)
                # gcloud fails on a prefix without objects: tell that apart from a refusal.
                if ! listed=$(gcloud storage ls "$source/" 2>&1); then
                    case "$listed" in
                        *"matched no objects"*) ;;
                        *) echo "$listed" >&2; exit 1 ;;
                    esac
                else
                    gcloud storage cp --recursive --no-user-output-enabled "$source/*" "$work/input/"
                fi
                ;;
        esac
        # The parts mlp score reads: every file under the prefix, in sub-prefixes too (a Hive-style
        # export's dt=2026-11-01/, Athena's UNLOAD ... partitioned_by), but the markers and hidden
        # files a writer leaves and what lies under them (_SUCCESS, .part-0.crc, _temporary/), as
        # servekit.scoring.files reads a directory.
        parts=$(find "$work/input" -mindepth 1 \( -name '_*' -o -name '.*' \) -prune -o -type f -print | wc -l)
        if [ "$parts" -eq 0 ]; then
            # The input's problem, not a passing one: exit 2 fails the Job at once.
            echo "fetch: nothing to score: no object under $source/ but markers" >&2
            exit 2
        fi
        # mlp score writes its --output and --summary into a directory it does not make: the
        # shared emptyDir holds only what this step made.
        mkdir -p "$work/output"
        date -u -d "@${NOW:-$(date -u +%s)}" +%Y-%m-%d > "$work/run-date"
        echo "fetch: $parts part(s) of $source/ to score, run of $(cat "$work/run-date")"
        ;;
    upload)
        scores="$work/output/${SCORES:-scores.parquet}"
        summary="$work/output/summary.json"
        check_url OUTPUT "${OUTPUT:?}"
        target="${OUTPUT%/}/$SERVICE/run_date=$(cat "$work/run-date")"
        marker="${TMPDIR:-/tmp}/_SUCCESS"
        : > "$marker"
        case "$target" in
            s3://*)
                aws s3 cp --only-show-errors "$scores" "$target/"
                aws s3 cp --only-show-errors "$summary" "$target/"
                aws s3 cp --only-show-errors "$marker" "$target/_SUCCESS"
                ;;
            gs://*)
                gcloud storage cp --no-user-output-enabled "$scores" "$target/"
                gcloud storage cp --no-user-output-enabled "$summary" "$target/"
                gcloud storage cp --no-user-output-enabled "$marker" "$target/_SUCCESS"
                ;;
        esac
        echo "upload: $(basename "$scores"), summary.json and _SUCCESS to $target/"
        ;;
    *) echo "transfer.sh: $step: neither fetch nor upload" >&2; exit 2 ;;
esac
