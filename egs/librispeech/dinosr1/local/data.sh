#!/usr/bin/env bash
# Stage 1 for LibriSpeech: fetch (or reuse) the corpora and write Kaldi data dirs.
#
#   local/data.sh [--datadir data] [--nj 4] [--download_dir downloads] [--dry_run false]
#
# Uses the copies named in db.sh (LIBRISPEECH, LIBRILIGHT_FT, LIBRISPEECH_LM) when set; otherwise
# downloads the 7 LibriSpeech parts, librispeech_finetuning.tgz and the openslr 11 LM files into
# --download_dir, with resume and checksums. --dry_run true prints what would be fetched and exits.
# Produces <datadir>/{train_960,train_10m,train_1h,train_10h,train_clean_100,dev_clean,dev_other,
# test_clean,test_other}, <datadir>/local/lm/lm_text.txt and <datadir>/local/lm/official_4gram.arpa.gz.
set -euo pipefail

datadir=data;           help_datadir="where the data dirs go"
nj=4;                   help_nj="parallel audio checks"
download_dir=downloads; help_download_dir="where missing corpora are downloaded"
dry_run=false;          help_dry_run="print what would be fetched and prepared, do nothing"
option_names="datadir nj download_dir dry_run"
help_message="Usage: $0 [options]    (stage 1 of egs/librispeech/dinosr1)"
. "$(dirname "$(readlink -f "$0")")/../../../../utils/parse_options.sh"
if [ $# -gt 0 ]; then
    echo "$0: unexpected arguments: $*" >&2
    exit 2
fi

recipe_dir=$(cd "$(dirname "$0")/.." && pwd)
cd "${recipe_dir}"
[ -f ./path.sh ] && . ./path.sh
. ./db.sh
repo_root=$(cd ../../.. && pwd)
export PYTHONPATH="${repo_root}${PYTHONPATH:+:${PYTHONPATH}}"
python=${PYTHON:-python3}

log() { echo "$(date '+%Y-%m-%dT%H:%M:%S') (local/data.sh) $*" >&2; }

to_fetch=()
[ -n "${LIBRISPEECH}" ] || to_fetch+=(train-clean-100.tar.gz train-clean-360.tar.gz train-other-500.tar.gz \
    dev-clean.tar.gz dev-other.tar.gz test-clean.tar.gz test-other.tar.gz)
[ -n "${LIBRILIGHT_FT}" ] || to_fetch+=(librispeech_finetuning.tgz)
[ -n "${LIBRISPEECH_LM}" ] || to_fetch+=(4-gram.arpa.gz librispeech-lexicon.txt librispeech-lm-norm.txt.gz)
librispeech=${LIBRISPEECH:-${download_dir}/LibriSpeech}
finetuning=${LIBRILIGHT_FT:-${download_dir}/librispeech_finetuning}
lm_dir=${LIBRISPEECH_LM:-${download_dir}}

if [ "${dry_run}" = true ]; then
    log "dry run: would fetch ${#to_fetch[@]} files (URL, size, destination, checksum):"
    [ ${#to_fetch[@]} -eq 0 ] || "${python}" -m dinosr_espnet.bin.download_librispeech \
        --download_dir "${download_dir}" --resources "${to_fetch[@]}" --dry_run
    log "dry run: would prepare ${datadir}/{train_960,train_10m,train_1h,train_10h,train_clean_100,dev_clean,dev_other,test_clean,test_other}"
    log "dry run: from ${librispeech}, ${finetuning}, LM files in ${lm_dir}"
    exit 0
fi

if [ ${#to_fetch[@]} -gt 0 ]; then
    log "fetching ${to_fetch[*]} into ${download_dir}"
    "${python}" -m dinosr_espnet.bin.download_librispeech --download_dir "${download_dir}" --resources "${to_fetch[@]}"
fi

log "preparing data dirs in ${datadir}"
"${python}" -m dinosr_espnet.bin.prepare_librispeech --librispeech_dir "${librispeech}" \
    --finetuning_dir "${finetuning}" --datadir "${datadir}" --nj "${nj}" \
    --lm_text "${lm_dir}/librispeech-lm-norm.txt.gz" --arpa "${lm_dir}/4-gram.arpa.gz" \
    --lexicon "${lm_dir}/librispeech-lexicon.txt"
log "done"
