#!/usr/bin/env bash
# The offline synthetic corpus (flite/festival voices), all stages on CPU: `make demo`.
# Pre-trains DinoSR on the unlabelled train parts, fine-tunes from it and from scratch (trainable
# front end) on the 1h split with 2 seeds, decodes Viterbi and lexicon + 4-gram, and prints CER/WER
# on the held-out-voice dev/test sets (RESULTS.md). Every option: ./run.sh --help
set -euo pipefail
# Run from this directory (outputs go to ./corpus ./data ./dump ./exp); a dir of symlinks to it works too.
template="$(dirname "$(readlink -f "$0")")/../../TEMPLATE/dinosr1/dinosr.sh"

# Demo sizes on top of the tiny configs, for <= 60 min on 2 cores (measured on 2 shared cores:
# ~1.5 s per pre-training update of 16 s audio, ~0.3-0.8 s per fine-tuning step of 10 s audio):
# 600 pre-training updates (~15 min) and 4 fine-tuning runs of 600 steps (~5 min each).
pretrain_sizes="--max_epoch 30 --num_iters_per_epoch 20 --scheduler_conf max_update=600"
finetune_sizes="--max_epoch 12 --num_iters_per_epoch 50 --scheduler_conf max_steps=600 --encoder_conf freeze_finetune_updates=150"

"${template}" \
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
