#!/usr/bin/env bash
# The offline synthetic corpus (flite/festival voices), all stages on CPU: `make demo`.
# Pre-trains DinoSR on the unlabelled train parts, fine-tunes from it and from scratch (trainable
# front end) on the 1h split with 2 seeds, decodes Viterbi and lexicon + 4-gram, and prints CER/WER
# on the held-out-voice dev/test sets (RESULTS.md). Every option: ./run.sh --help
set -euo pipefail
# Run from this directory (outputs go to ./corpus ./data ./dump ./exp); a dir of symlinks to it works too.
template="$(dirname "$(readlink -f "$0")")/../../TEMPLATE/dinosr1/dinosr.sh"

# Demo sizes on top of the tiny configs, for <= 60 min on 2 cores. Measured (make demo at 600
# updates each): corpus 6 min; 0.15 s per pre-training update (16 s audio) + ~6 s per validation;
# 0.045 s per fine-tuning step + ~1.5 s per validation; decoding 1.6 min per model. These sizes:
# pre-training 4000 updates (~14 min; teacher EMA annealed over 300 and frozen at half, as the
# official 30k / 200k of 400k), 4 fine-tuning runs of 3000 steps (~3 min each).
pretrain_sizes="--max_epoch 40 --num_iters_per_epoch 100 --scheduler_conf max_update=4000 --model_conf freeze_teacher_step=2001 --model_conf ema_anneal_end_step=300"
finetune_sizes="--max_epoch 30 --num_iters_per_epoch 100 --scheduler_conf max_steps=3000 --encoder_conf freeze_finetune_updates=1000"

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
