#!/usr/bin/env bash
# LibriSpeech 960 h pre-training, Libri-light low-resource fine-tuning, official 4-gram decoding:
# the paper's setup. Every option of the shared stages: ./run.sh --help
set -euo pipefail
# Run from this directory (outputs go to ./data ./dump ./exp); a directory of symlinks to it works too.
template="$(dirname "$(readlink -f "$0")")/../../TEMPLATE/dinosr1/dinosr.sh"

# RESULTS.md records the command as typed
export DINOSR_RECIPE_COMMAND="$0${*:+ $*}"
exec "${template}" \
    --pretrain_set train_960 --pretrain_valid_set dev_clean \
    --finetune_valid_set dev_other --tune_set dev_other \
    --test_sets "dev_clean dev_other test_clean test_other" \
    --min_duration 2 --max_duration 20 \
    --pretrain_tags dinosr --pretrain_config "conf/pretrain_{tag}_base.yaml" \
    --finetune_splits "10m 1h 10h 100h" --finetune_inits dinosr --seeds 1 \
    --finetune_config "conf/finetune_ctc_{split}.yaml" \
    --decode_config conf/decode.yaml --lm official --paper_table librispeech \
    "$@"
