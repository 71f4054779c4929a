# Sourced by run.sh: the repo's virtual environment and KenLM tools first on PATH.
# The package is installed editable into .venv, so no PYTHONPATH is needed.
repo_root="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../../.." && pwd)"
export PATH="${repo_root}/.venv/bin:${repo_root}/tools/kenlm/bin:${repo_root}/utils:${PATH}"
export PYTHON="${repo_root}/.venv/bin/python"
[ -x "${PYTHON}" ] || PYTHON=python3   # no venv: use the python on PATH (it must have dinosr_espnet installed)
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"   # the demo is sized for 2 cores
export PYTHONIOENCODING=UTF-8
