#!/usr/bin/env bash
# The complete comparison of the synthetic demo (`make demo-full`): run.sh with every pre-training tag
# and fine-tuning init, on the 10m and 1h splits, 2 seeds, Viterbi and 4-gram (RESULTS.md, RESULTS.json):
#   pre-training (equal updates and batch): dinosr, data2vec, dinosr_reseed (conf/pretrain_<tag>_demo.yaml)
#   inits: scratch, scratch3x (random init with 3x the fine-tuning updates), data2vec, dinosr, dinosr_reseed
# Options after these override them, e.g. ./run_full.sh --stage 4; every option: ./run.sh --help
set -euo pipefail
export DINOSR_RECIPE_COMMAND="$0${*:+ $*}"
exec "$(dirname "$(readlink -f "$0")")/run.sh" \
    --pretrain_tags "dinosr data2vec dinosr_reseed" \
    --finetune_splits "10m 1h" --finetune_inits "scratch scratch3x data2vec dinosr dinosr_reseed" \
    "$@"
