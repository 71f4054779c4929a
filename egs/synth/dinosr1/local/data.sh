#!/usr/bin/env bash
# Stage 1 for the offline synthetic corpus: generate it (if not complete) and write Kaldi data dirs
# with the same preparation code as LibriSpeech.
#
#   local/data.sh [--datadir data] [--corpus_dir corpus] [--nj 2] [--seed 1] [--tiny false]
#                 [--unlabeled_hours H] [--eval_minutes M] [--fold_minutes M] [--ninehour_hours H]
#                 [--dry_run false]
#
# Produces <datadir>/{train_960,train_10m,train_1h,train_10h,train_clean_100,dev_clean,dev_other,
# test_clean,test_other} (each with frame_phones) and <datadir>/local/lm/lm_text.txt.
# Demo size: train_960 = 20 h unlabeled (~280 pseudo-speakers of 9 voices), 20x the 1 h split; the
# labeled splits come from the voices of 4 recorded persons (kal, slt, us2, awb) only.
# The two test conditions (dinosr_espnet/data/synth_plan.py):
#   dev_clean, test_clean  (a) voices heard in the unlabeled set, never in a labeled split (us1, ked, rab)
#   dev_other, test_other  (b) a voice heard nowhere in training (rms)
# Both have the same mix of mild and noisy/reverberant speakers: here clean/other name the condition.
# Re-runnable: a complete corpus and complete data dirs are skipped.
set -euo pipefail

datadir=data
corpus_dir=
nj=2
seed=1
tiny=false
dry_run=false
size_args=()

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
while [ $# -gt 0 ]; do
    case "$1" in
        --datadir) datadir=$2; shift 2 ;;
        --corpus_dir) corpus_dir=$2; shift 2 ;;
        --nj) nj=$2; shift 2 ;;
        --seed) seed=$2; shift 2 ;;
        --tiny) tiny=$2; shift 2 ;;
        --unlabeled_hours|--eval_minutes|--fold_minutes|--ninehour_hours) size_args+=("$1" "$2"); shift 2 ;;
        --dry_run) dry_run=$2; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "$0: unknown option $1" >&2; usage >&2; exit 1 ;;
    esac
done
[ "${tiny}" = true ] && size_args+=(--tiny)

recipe_dir=$(cd "$(dirname "$0")/.." && pwd)
cd "${recipe_dir}"
[ -f ./path.sh ] && . ./path.sh
. ./db.sh
corpus_dir=${corpus_dir:-${SYNTH_CORPUS}}
repo_root=$(cd ../../.. && pwd)
export PYTHONPATH="${repo_root}${PYTHONPATH:+:${PYTHONPATH}}"
python=${PYTHON:-python3}

log() { echo "$(date '+%Y-%m-%dT%H:%M:%S') (local/data.sh) $*" >&2; }

if [ "${dry_run}" = true ]; then
    if [ -f "${corpus_dir}/.complete" ]; then
        log "dry run: corpus ${corpus_dir} is complete; nothing to generate"
    else
        log "dry run: would generate the synthetic corpus into ${corpus_dir} (seed ${seed}, ${nj} workers, ${size_args[*]:-demo size}); no download"
    fi
    log "dry run: would prepare ${datadir}/{train_960,train_10m,train_1h,train_10h,train_clean_100,dev_clean,dev_other,test_clean,test_other} + frame_phones and ${datadir}/local/lm/lm_text.txt"
    exit 0
fi

log "generating the synthetic corpus in ${corpus_dir} (skipped when complete)"
"${python}" -m dinosr_espnet.bin.make_synth_corpus --out "${corpus_dir}" --seed "${seed}" --nj "${nj}" "${size_args[@]}"

log "preparing data dirs in ${datadir}"
"${python}" -m dinosr_espnet.bin.prepare_librispeech --librispeech_dir "${corpus_dir}/LibriSpeech" \
    --finetuning_dir "${corpus_dir}/librispeech_finetuning" --datadir "${datadir}" --nj "${nj}" \
    --frame_phones "${corpus_dir}/frame_phones.txt" --lm_text "${corpus_dir}/lm_text.txt"
log "done"
