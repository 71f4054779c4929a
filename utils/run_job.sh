#!/usr/bin/env bash
# Local job runner used through cmd.sh: run a command, log it, return its exit status.
#
#     utils/run_job.sh [JOB=1:N] LOGFILE COMMAND [ARGS...]
#
# LOGFILE gets a header (command, host, start time), the command's stdout and stderr, and a
# footer with the exit status and elapsed time. With JOB=1:N the command runs N times in
# parallel; every "JOB" in LOGFILE and in the arguments is replaced by the job index, and the
# exit status is non-zero if any job failed (their logs are named on stderr).
# Set JOB_LAUNCHER to a prefix such as "srun --ntasks=1" to run each job through a scheduler.
# Set JOB_PROGRESS to a command (e.g. "python -m dinosr_espnet.bin.follow_progress") to run it, with
# LOGFILE as its last argument, beside a single job: it prints short progress lines to stdout while
# the full output still goes to LOGFILE; it is stopped when the job ends.
set -u -o pipefail

if [ $# -lt 2 ]; then
    echo "Usage: $0 [JOB=1:N] LOGFILE COMMAND [ARGS...]" >&2
    exit 2
fi

first_job=1
last_job=1
job_variable=""
if [[ "$1" =~ ^([A-Za-z_][A-Za-z0-9_]*)=([0-9]+):([0-9]+)$ ]]; then
    job_variable="${BASH_REMATCH[1]}"
    first_job="${BASH_REMATCH[2]}"
    last_job="${BASH_REMATCH[3]}"
    shift
    if [ "${first_job}" -gt "${last_job}" ]; then
        echo "$0: empty job range ${first_job}:${last_job}" >&2
        exit 2
    fi
fi
log_pattern="$1"
shift
if [ $# -eq 0 ]; then
    echo "$0: no command given (log file ${log_pattern})" >&2
    exit 2
fi

# Replace the job variable in one string by a job index.
substitute_job() {
    local text="$1" index="$2"
    if [ -n "${job_variable}" ]; then
        text="${text//${job_variable}/${index}}"
    fi
    printf '%s' "${text}"
}

progress_follower=""
stop_progress_follower() {  # the follower reads the closing line and exits; TERM is the fallback
    [ -n "${progress_follower}" ] || return 0
    local waited=0
    while kill -0 "${progress_follower}" 2> /dev/null && [ "${waited}" -lt 20 ]; do
        sleep 0.1
        waited=$((waited + 1))
    done
    kill -TERM "${progress_follower}" 2> /dev/null
    wait "${progress_follower}" 2> /dev/null
    progress_follower=""
    return 0
}
trap stop_progress_follower EXIT

run_one_job() {
    local index="$1"; shift
    local log_file arguments=() argument start_seconds status
    log_file="$(substitute_job "${log_pattern}" "${index}")"
    for argument in "$@"; do
        arguments+=("$(substitute_job "${argument}" "${index}")")
    done
    mkdir -p "$(dirname "${log_file}")"
    start_seconds=${SECONDS}
    {
        printf '#'; printf ' %q' "${arguments[@]}"; echo
        echo "# started on $(hostname) at $(date '+%Y-%m-%dT%H:%M:%S')"
    } > "${log_file}"
    if [ -n "${JOB_PROGRESS:-}" ] && [ -z "${job_variable}" ]; then
        # shellcheck disable=SC2086  # JOB_PROGRESS is a command line
        ${JOB_PROGRESS} "${log_file}" &
        progress_follower=$!
    fi
    # The command is given as words; a single word containing spaces or shell syntax is
    # run by bash so that pipes and redirections in it work.
    # JOB_LAUNCHER (e.g. "srun --ntasks=1") is split at blanks, never globbed.
    local launcher=()
    read -r -a launcher <<< "${JOB_LAUNCHER:-}"
    if [ "${#arguments[@]}" -eq 1 ]; then
        "${launcher[@]+"${launcher[@]}"}" bash -c "${arguments[0]}" >> "${log_file}" 2>&1
    else
        "${launcher[@]+"${launcher[@]}"}" "${arguments[@]}" >> "${log_file}" 2>&1
    fi
    status=$?
    echo "# ended at $(date '+%Y-%m-%dT%H:%M:%S') after $((SECONDS - start_seconds)) s with exit status ${status}" >> "${log_file}"
    stop_progress_follower
    return "${status}"
}

if [ "${first_job}" -eq "${last_job}" ] && [ -z "${job_variable}" ]; then
    run_one_job 1 "$@"
    exit $?
fi

process_ids=()
for index in $(seq "${first_job}" "${last_job}"); do
    run_one_job "${index}" "$@" &
    process_ids+=("$!")
done
failed=0
index=${first_job}
for process_id in "${process_ids[@]}"; do
    if ! wait "${process_id}"; then
        echo "$0: job ${index} failed, see $(substitute_job "${log_pattern}" "${index}")" >&2
        failed=$((failed + 1))
    fi
    index=$((index + 1))
done
if [ "${failed}" -gt 0 ]; then
    echo "$0: ${failed} of $((last_job - first_job + 1)) jobs failed" >&2
    exit 1
fi
exit 0
