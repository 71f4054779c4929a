#!/usr/bin/env bash
# The offline synthetic corpus (flite/festival/mbrola voices), all stages on CPU: `make demo`.
# Pre-trains DinoSR on the unlabelled train parts (20 h), fine-tunes from it and from scratch (trainable
# front end) on the 1h split with 2 seeds, decodes Viterbi and lexicon + 4-gram, and prints CER/WER
# (RESULTS.md, RESULTS.json) on two test conditions, kept in LibriSpeech's set names:
#   dev_clean / test_clean: (a) voices heard in the unlabeled set but not in the labeled split;
#   dev_other / test_other: (b) a voice heard nowhere in training;
# and on train_fit (100 utterances of the labelled train_10m, which is fold 0 of train_1h: the fit on
# training data). Choices (model selection, LM weight) use dev_other; test_* only make the final table.
# The complete comparison (data2vec, DinoSR with re-seeded codebooks, scratch with 3x the updates,
# 10m and 1h): ./run_full.sh (`make demo-full`). Every option: ./run.sh --help
set -euo pipefail
# Run from this directory (outputs go to ./corpus ./data ./dump ./exp); a dir of symlinks to it works too.
template="$(dirname "$(readlink -f "$0")")/../../TEMPLATE/dinosr1/dinosr.sh"

# Demo configs (conf/*_demo.yaml): a small DinoSR (80-dim log-mel + 2 Conv2d blocks to 25 Hz, 4 pre-LN
# layers x 256, no dropout), 1000 pre-training updates of 48 s, 400 fine-tuning updates of 40 s per model. A
# pre-trained encoder fine-tunes at 0.1 x the CTC layer's lr after 50 updates of the CTC layer alone; the
# scratch baseline trains everything, front end included, at the full lr from the first update. Times
# and results: RESULTS.md, which ends with local/tuning_notes.md (the variants tried, measured).
# RESULTS.md records the command as typed
export DINOSR_RECIPE_COMMAND="${DINOSR_RECIPE_COMMAND:-$0${*:+ $*}}"
exec "${template}" \
    --pretrain_set train_960 --pretrain_valid_set dev_clean \
    --finetune_valid_set dev_other --tune_set dev_other \
    --test_sets "dev_clean dev_other test_clean test_other train_fit" --eval_subsets "train_fit:train_10m:100" \
    --min_duration 1 --max_duration 20 \
    --pretrain_tags dinosr --pretrain_config "conf/pretrain_{tag}_demo.yaml" \
    --finetune_splits 1h --finetune_inits "dinosr scratch" --seeds "1 2" \
    --finetune_config conf/finetune_ctc_demo.yaml \
    --scratch_args "--encoder_conf freeze_feature_extractor=false --encoder_conf freeze_finetune_updates=0 --encoder_lr_scale 1.0" \
    --finetune_init_args "scratch3x: --max_epoch 24 --scheduler_conf max_steps=1200" \
    --decode_config conf/decode_tiny.yaml --lm build --analysis_set dev_clean \
    --results_notes local/tuning_notes.md \
    "$@"
