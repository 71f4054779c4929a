# Sourced by run.sh: how jobs run. Each *_cmd is called as: $cmd LOGFILE COMMAND [ARGS...]
# (or $cmd JOB=1:N LOGFILE COMMAND ... for N parallel jobs); see utils/run_job.sh.
repo_root="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../../.." && pwd)"

# Local machine (default).
export train_cmd="${repo_root}/utils/run_job.sh"
export cuda_cmd="${train_cmd}"
export decode_cmd="${train_cmd}"

# Slurm, e.g. pre-training on 2 nodes x 8 GPUs with --ngpu 8 --num_nodes 2: run_job.sh puts
# JOB_LAUNCHER in front of the command, and ESPnet picks up the Slurm variables of each task.
# A *_cmd is split into words like a shell line (quotes honoured, nothing expanded), so quote a
# path that may hold spaces with printf %q:
# export cuda_cmd="env JOB_LAUNCHER='srun --nodes=2 --ntasks-per-node=1 --gpus-per-node=8 --cpus-per-task=32' $(printf %q "${train_cmd}")"
# export decode_cmd="env JOB_LAUNCHER='srun --ntasks=1 --cpus-per-task=8' $(printf %q "${train_cmd}")"
