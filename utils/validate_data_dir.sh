#!/usr/bin/env bash
# Check a Kaldi data dir the way stage 2 does (sorted, consistent ids, positive sample counts,
# transcripts in the char vocabulary, audio headers: FLAC/WAV content, 16 kHz mono, the listed
# length; wav.scp commands refused); exit non-zero listing every problem.
#
#     utils/validate_data_dir.sh [--no-text] [--no-audio] DATA_DIR
#
# --no-text: the set is unlabelled (no text needed); --no-audio: skip the audio-file check.
set -euo pipefail
group=--eval_sets
check_audio=true
while [ $# -gt 1 ]; do
    case "$1" in
        --no-text) group=--pretrain_sets; shift ;;
        --no-audio) check_audio=false; shift ;;
        *) echo "$0: unknown option $1" >&2; exit 2 ;;
    esac
done
if [ $# -ne 1 ]; then
    echo "Usage: $0 [--no-text] [--no-audio] DATA_DIR" >&2
    exit 2
fi
data_dir="${1%/}"
exec "${PYTHON:-python3}" -m dinosr_espnet.bin.format_data --validate_only true --lm_text "" \
    --check_audio "${check_audio}" --data_dir "$(dirname "${data_dir}")" "${group}" "$(basename "${data_dir}")"
