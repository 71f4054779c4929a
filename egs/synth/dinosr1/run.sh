#!/usr/bin/env bash
# The offline synthetic corpus (flite/festival voices), all stages on CPU: `make demo`.
# Pre-trains DinoSR on the unlabelled train parts, fine-tunes from it and from scratch (trainable
# front end) on the 1h split with 2 seeds, decodes Viterbi and lexicon + 4-gram, and prints CER/WER
# on the held-out-voice dev/test sets (RESULTS.md). Every option: ./run.sh --help
set -euo pipefail
# Run from this directory (outputs go to ./corpus ./data ./dump ./exp); a dir of symlinks to it works too.
template="$(dirname "$(readlink -f "$0")")/../../TEMPLATE/dinosr1/dinosr.sh"

# Demo sizes on top of the tiny configs. Measured with these sizes on 2 shared cores: make demo
# end to end 21.4 min (corpus 6.0, pre-training 4.7, 4 fine-tunings 5.2, decoding 5.5 min).
# 4000 pre-training updates + 3000 fine-tuning steps took ~25 min more and did not lower the
# dev-other CER (0.88 vs 0.83 best): the tiny model, not the update count, is the limit.
pretrain_sizes="--max_epoch 30 --num_iters_per_epoch 20 --scheduler_conf max_update=600"
finetune_sizes="--max_epoch 12 --num_iters_per_epoch 50 --scheduler_conf max_steps=600 --encoder_conf freeze_finetune_updates=150"

# RESULTS.md records the command as typed
export DINOSR_RECIPE_COMMAND="$0${*:+ $*}"
exec "${template}" \
    --pretrain_set train_960 --pretrain_valid_set dev_clean \
    --finetune_valid_set dev_other --tune_set dev_other \
    --test_sets "dev_clean dev_other test_clean test_other" \
    --min_duration 1 --max_duration 20 \
    --pretrain_tags dinosr --pretrain_config "conf/pretrain_{tag}_tiny.yaml" --pretrain_args "${pretrain_sizes}" \
    --finetune_splits 1h --finetune_inits "dinosr scratch" --seeds "1 2" \
    --finetune_config conf/finetune_ctc_tiny.yaml --finetune_args "${finetune_sizes}" \
    --scratch_args "--encoder_conf freeze_feature_extractor=false" \
    --decode_config conf/decode_tiny.yaml --lm build --analysis_set dev_clean \
    "$@"
