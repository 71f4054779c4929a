#!/usr/bin/env bash
# DinoSR recipe stages shared by every corpus. A recipe's run.sh sets its data sets and configs
# and calls this script; run it from the recipe dir (egs/<corpus>/dinosr1), which holds
# local/data.sh, path.sh, cmd.sh and conf/. Outputs, all under the recipe dir:
#
#   data/<set>/                 stage 1: Kaldi data dirs, data/local/lm/lm_text.txt
#   dump/<set>/, data/token_list/char/tokens.txt     stage 2
#   exp/pretrain_<tag>/{model.pth,config.yaml}       stage 3 (tag = dinosr | data2vec | official)
#   exp/finetune_<init>_<split>_seed<seed>/          stage 4 (init = pre-training tag | scratch*)
#   data/local/lm/{4gram.arpa,4gram.bin,lexicon.txt} stage 5
#   exp/finetune_*/decode/                           stage 6
#   RESULTS.md, RESULTS.json, RESULTS_figures/       stage 7
#   exp/pretrain_<tag>/units/                        stage 8 (optional unit analysis)
#
# Each unit of work writes <dir>/.done (holding its command) only after its outputs are complete;
# a re-run skips what is done, and training resumes from checkpoint.pth (--resume true).
set -euo pipefail

template_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "${template_dir}/../../.." && pwd)"
utils_dir="${repo_root}/utils"

# ---- options (name=default; help_<name> is the one-line help --help prints) ----
stage=1;                help_stage="first stage to run (1..8)"
stop_stage=7;           help_stop_stage="last stage to run (8 = unit analysis)"
ngpu=0;                 help_ngpu="GPUs per node for training (0 = CPU)"
num_nodes=1;            help_num_nodes="nodes for pre-training; >1 launches through cuda_cmd of cmd.sh (Slurm)"
nj=2;                   help_nj="parallel jobs for data preparation"
dry_run=false;          help_dry_run="print every command, validate every config it would use, run nothing"
data_opts="";           help_data_opts="extra options for local/data.sh (every *_args / *_opts string is split like a shell line: quotes honoured, nothing globbed or run)"
pretrain_set=train_960; help_pretrain_set="unlabelled pre-training set"
pretrain_valid_set=dev_clean; help_pretrain_valid_set="validation set for pre-training"
finetune_valid_set=dev_other; help_finetune_valid_set="validation set for fine-tuning (model selection)"
tune_set=dev_other;     help_tune_set="set on which decoding tunes LM weight and word score"
test_sets="dev_clean dev_other test_clean test_other"; help_test_sets="sets decoded and scored"
min_duration=2;         help_min_duration="pre-training duration filter: minimum seconds"
max_duration=20;        help_max_duration="pre-training duration filter: maximum seconds"
finetune_max_duration=0; help_finetune_max_duration="fine-tuning duration filter: maximum seconds (0 = none)"
pretrain_tags="dinosr"; help_pretrain_tags="SSL models to pre-train in stage 3 (dinosr data2vec)"
pretrain_config="conf/pretrain_{tag}_base.yaml"; help_pretrain_config="pre-training config; {tag} is replaced by the tag"
pretrain_args="";       help_pretrain_args="extra options for bin.dinosr_train"
pretrained_model="";    help_pretrained_model="imported official model: model.pth, or a fairseq .pt/.ckpt to import; skips stage 3 training, init tag 'official'"
import_args="";         help_import_args="extra options for bin.import_fairseq (--trust_checkpoint: unpickle a file you trust in full)"
finetune_splits="10m 1h 10h 100h"; help_finetune_splits="labelled splits to fine-tune on (set train_<split>; 100h = train_clean_100)"
finetune_inits="dinosr"; help_finetune_inits="encoder initialisations: pre-training tags, 'official', or a random init: 'scratch' or any name starting with it (e.g. scratch3x)"
finetune_config="conf/finetune_ctc_{split}.yaml"; help_finetune_config="fine-tuning config; {split} is replaced by the split"
finetune_args="";       help_finetune_args="extra options for bin.asr_train"
scratch_args="";        help_scratch_args="extra options for bin.asr_train when the init is a random init (scratch*)"
finetune_init_args="";  help_finetune_init_args="extra bin.asr_train options of single inits: 'INIT: OPTIONS' entries separated by ';' (e.g. 'scratch3x: --max_epoch 24')"
eval_subsets="";        help_eval_subsets="sets cut from a labelled set in stage 2: NAME:SOURCE:COUNT ... (COUNT utterances spread over SOURCE, e.g. train_fit:train_10m:100); list NAME in --test_sets to decode it"
seeds="1";              help_seeds="fine-tuning seeds, one run each"
decode_config="conf/decode.yaml"; help_decode_config="decoding config (Viterbi and lexicon + 4-gram)"
decode_args="";         help_decode_args="extra options for bin.decode"
lm=build;               help_lm="official (LibriSpeech 4-gram ARPA from stage 1) or build (from the LM text)"
lm_order=4;             help_lm_order="n-gram order when --lm build"
lm_args="";             help_lm_args="extra options for bin.build_lm (e.g. --kenlm_bin_dir DIR)"
paper_table="";         help_paper_table="paper table layout for RESULTS.md (librispeech) or empty"
results_notes="";       help_results_notes="markdown file appended to RESULTS.md (e.g. local/tuning_notes.md: what was tried)"
analysis_set=dev_clean; help_analysis_set="set (with frame_phones) for stage 8 unit analysis"
analysis_args="";       help_analysis_args="extra options for bin.analyze_units"

option_names="stage stop_stage ngpu num_nodes nj dry_run data_opts pretrain_set pretrain_valid_set
finetune_valid_set tune_set test_sets min_duration max_duration finetune_max_duration pretrain_tags
pretrain_config pretrain_args pretrained_model import_args finetune_splits finetune_inits finetune_config finetune_args
scratch_args finetune_init_args eval_subsets seeds decode_config decode_args lm lm_order lm_args paper_table results_notes analysis_set analysis_args"
help_message="Usage: ./run.sh [options]    (run from a recipe dir, e.g. egs/librispeech/dinosr1)
Stages: 1 data  2 format  3 pre-train  4 fine-tune  5 LM  6 decode  7 score  8 unit analysis"

invocation="${DINOSR_RECIPE_COMMAND:-$0 $*}"  # run.sh passes the command the user typed
. "${utils_dir}/parse_options.sh"

if [ $# -gt 0 ]; then
    echo "$0: unexpected arguments: $*" >&2
    exit 2
fi
[ -f path.sh ] && . ./path.sh
[ -f cmd.sh ] && . ./cmd.sh
: "${train_cmd:=${utils_dir}/run_job.sh}"
: "${cuda_cmd:=${train_cmd}}"
: "${decode_cmd:=${train_cmd}}"
python="${PYTHON:-python3}"
command -v "${python}" > /dev/null || { echo "$0: python not found (${python}); check path.sh" >&2; exit 1; }
# Training jobs print a progress line every DINOSR_PROGRESS_INTERVAL s (utils/run_job.sh; full log: train.log).
progress_cmd="${python} -m dinosr_espnet.bin.follow_progress --interval ${DINOSR_PROGRESS_INTERVAL:-30}"

log() {
    echo "$(date '+%Y-%m-%dT%H:%M:%S') $*"
}

fail() {
    echo "$(date '+%Y-%m-%dT%H:%M:%S') ERROR: $*" >&2
    exit 1
}

case "${dry_run}" in true|false) ;; *) fail "--dry_run must be true or false, not '${dry_run}'";; esac
case "${lm}" in official|build) ;; *) fail "--lm must be official or build, not '${lm}'";; esac
for number in stage stop_stage ngpu num_nodes nj lm_order; do
    [[ "${!number}" =~ ^[0-9]+$ ]] || fail "--${number} must be a non-negative integer, not '${!number}'"
done
# Set names, splits, tags, inits and seeds become file names and words of commands: plain names only.
for names in pretrain_set pretrain_valid_set finetune_valid_set tune_set test_sets analysis_set \
        finetune_splits pretrain_tags finetune_inits seeds; do
    for name in ${!names}; do
        [[ "${name}" =~ ^[A-Za-z0-9_.-]+$ ]] \
            || fail "--${names}: '${name}' is not a valid name (letters, digits, '_', '.', '-' only)"
    done
done

# split_words ARRAY STRING : ARRAY = the words of STRING split as a shell would (quotes and backslashes
# honoured), without globbing or running anything: $(...), backticks and ';' stay plain text.
# A STRING that is an executable file (a job runner under a path with spaces) is one word.
split_words() {
    local -n split_words_target="$1"
    split_words_target=()
    [ -n "$2" ] || return 0
    if [ -f "$2" ] && [ -x "$2" ]; then
        split_words_target=("$2")
        return 0
    fi
    mapfile -d '' split_words_target < <("${python}" -c 'import shlex, sys
try:
    words = shlex.split(sys.argv[1])
except ValueError as error:
    sys.exit(f"cannot split {sys.argv[1]!r} into words: {error}")
sys.stdout.write("".join(word + "\0" for word in words))' "$2")
    wait $! || fail "$1: fix the quoting of the option string above"
}
for option in data_opts pretrain_args finetune_args scratch_args decode_args lm_args analysis_args; do
    split_words "${option}_words" "${!option}"
done

run_stage() {  # run_stage N -> true if N is within [stage, stop_stage]
    [ "${stage}" -le "$1" ] && [ "${stop_stage}" -ge "$1" ]
}

is_done() {  # is_done DIR -> true (and says so) if DIR/.done exists
    if [ -f "$1/.done" ]; then
        log "  $1 is done already (remove $1/.done to redo it)"
        return 0
    fi
    return 1
}

# run_logged DONE_DIR LOG COMMAND... : run through the job runner, then mark DONE_DIR complete.
# In a dry run, print the command instead.
run_logged() {
    local done_dir="$1" log_file="$2"
    shift 2
    if ${dry_run}; then
        printf '  [dry run]'; printf ' %q' "$@"; echo "  > ${log_file}"
        return 0
    fi
    log "  running (log: ${log_file}):"
    printf '   '; printf ' %q' "$@"; echo
    mkdir -p "$(dirname "${log_file}")"
    local job_runner
    split_words job_runner "${run_cmd:-${train_cmd}}"
    if ! "${job_runner[@]}" "${log_file}" "$@"; then
        echo "----- last lines of ${log_file} -----" >&2
        tail -n 30 "${log_file}" >&2 || true
        fail "command failed; full log: ${log_file}"
    fi
    mark_done "${done_dir}" "$@"
}

mark_done() {  # mark_done DIR COMMAND... : record the command that completed DIR
    local done_dir="$1"
    shift
    mkdir -p "${done_dir}"
    { printf '%q ' "$@"; echo; echo "# finished $(date '+%Y-%m-%dT%H:%M:%S')"; } > "${done_dir}/.done"
}

require_files() {  # require_files WHAT FILE... : fail unless every FILE exists (skipped in a dry run)
    local what="$1" file
    shift
    ${dry_run} && return 0
    for file in "$@"; do
        [ -e "${file}" ] || fail "${what}: expected ${file}, which is missing"
    done
}

validate_config() {  # validate_config FILE : exists and parses as a YAML mapping
    [ -f "$1" ] || fail "config $1 does not exist (cwd: $(pwd))"
    "${python}" - "$1" <<'PYTHON' || fail "config $1 is not valid YAML (see above)"
import sys
import yaml
path = sys.argv[1]
with open(path, encoding="utf-8") as handle:
    content = yaml.safe_load(handle)
if not isinstance(content, dict):
    sys.exit(f"{path}: expected a YAML mapping of options, got {type(content).__name__}")
PYTHON
}

write_results() {  # RESULTS.md from every scored decoding (and unit analysis) under exp/
    local score_args=()
    [ -n "${paper_table}" ] && score_args+=(--paper_table "${paper_table}")
    [ -n "${results_notes}" ] && score_args+=(--notes "${results_notes}")
    run_logged exp/score exp/score/score.log "${python}" -m dinosr_espnet.bin.score \
        --exp_root exp --output RESULTS.md "${score_args[@]+"${score_args[@]}"}"
}

check_pretrain_model() {  # check_pretrain_model TAG FILE : the config's model: (default dinosr) is TAG or TAG's prefix
    "${python}" - "$1" "$2" <<'PYTHON' || fail "pre-training config $2 does not train what tag '$1' names (see above)"
import sys
import yaml
tag, path = sys.argv[1], sys.argv[2]
with open(path, encoding="utf-8") as handle:
    model = (yaml.safe_load(handle) or {}).get("model", "dinosr")
if tag != model and not tag.startswith(f"{model}_"):
    sys.exit(f"{path}: 'model: {model}' but the tag is '{tag}' (it would train {model} into "
             f"exp/pretrain_{tag}); the tag must be '{model}' or start with '{model}_'")
PYTHON
}

pretrain_config_of() { echo "${pretrain_config//\{tag\}/$1}"; }
finetune_config_of() { echo "${finetune_config//\{split\}/$1}"; }
finetune_set_of() {  # Libri-light naming: 100h is train-clean-100
    if [ "$1" = "100h" ]; then echo train_clean_100; else echo "train_$1"; fi
}
finetune_dir_of() { echo "exp/finetune_$1_$2_seed$3"; }  # init split seed
is_random_init() { [[ "$1" == scratch* ]]; }
finetune_init_args_of() {  # INIT -> the options of its --finetune_init_args entry (empty if none)
    local entry entries
    IFS=';' read -r -a entries <<< "${finetune_init_args}"   # no globbing, unlike an unquoted for-list
    for entry in "${entries[@]+"${entries[@]}"}"; do
        entry="${entry#"${entry%%[![:space:]]*}"}"
        [ "${entry%%:*}" = "$1" ] && echo "${entry#*:}"
    done
    return 0
}
pretrained_model_of() {  # init tag -> model.pth path
    if [ "$1" = official ]; then
        case "${pretrained_model}" in
            *.pth) echo "${pretrained_model}" ;;
            *) echo "exp/pretrain_official/model.pth" ;;
        esac
    else
        echo "exp/pretrain_$1/model.pth"
    fi
}

# ---- validate the options and every config before running anything ----
(IFS=';'; for entry in ${finetune_init_args}; do
    entry="${entry#"${entry%%[![:space:]]*}"}"
    [ -z "${entry}" ] && continue
    [[ "${entry}" =~ ^[A-Za-z0-9_]+: ]] || fail "--finetune_init_args: '${entry}' is not 'INIT: OPTIONS'"
done) || exit 1
for init in ${finetune_inits}; do
    if [ "${init}" = official ] && [ -z "${pretrained_model}" ]; then
        fail "--finetune_inits has 'official' but --pretrained_model is empty"
    fi
done
if run_stage 3; then
    [ -z "${pretrained_model}" ] || [ -e "${pretrained_model}" ] || ${dry_run} \
        || fail "--pretrained_model ${pretrained_model} does not exist"
    if [ -z "${pretrained_model}" ]; then
        for tag in ${pretrain_tags}; do
            validate_config "$(pretrain_config_of "${tag}")"
            check_pretrain_model "${tag}" "$(pretrain_config_of "${tag}")"
        done
    fi
fi
if run_stage 4; then
    for split in ${finetune_splits}; do validate_config "$(finetune_config_of "${split}")"; done
fi
if { run_stage 7 || run_stage 8; } && [ -n "${results_notes}" ] && [ ! -f "${results_notes}" ]; then
    fail "--results_notes ${results_notes} does not exist (cwd: $(pwd))"
fi
if run_stage 6; then
    validate_config "${decode_config}"
fi
if run_stage 1 && [ ! -x local/data.sh ]; then
    fail "local/data.sh is missing or not executable (cwd: $(pwd))"
fi
${dry_run} && log "dry run: configs are valid; printing the commands of stages ${stage}-${stop_stage}"

# ---- bookkeeping for RESULTS.md: the command, and the wall time of every stage attempt ----
current_stage=""
stage_started=0
record_stage_time() {  # record_stage_time STATUS : close the timer of the running stage
    [ -n "${current_stage}" ] || return 0
    printf '%s\t%s\t%s\t%s\n' "${current_stage}" "$(( $(date +%s) - stage_started ))" "$1" \
        "$(date '+%Y-%m-%dT%H:%M:%S')" >> exp/stage_times.tsv
    current_stage=""
}
begin_stage() {  # begin_stage N : time stage N (closing the previous stage's timer)
    ${dry_run} && return 0
    record_stage_time finished
    current_stage="$1"
    stage_started=$(date +%s)
}
if ! ${dry_run}; then
    mkdir -p exp
    printf '%s\t%s\t%s\n' "$(date '+%Y-%m-%dT%H:%M:%S')" "stages ${stage}-${stop_stage}" "${invocation}" \
        >> exp/commands.log
    # A failed or killed run still records how long its last stage ran (status "stopped (exit N)").
    trap 'record_stage_time "stopped (exit $?)"' EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
fi

# The labelled training sets stage 2 formats: one per split.
finetune_sets=""
for split in ${finetune_splits}; do finetune_sets+="$(finetune_set_of "${split}") "; done
finetune_sets="${finetune_sets% }"
# Every other set a later stage reads: unfiltered copies.
# (the --eval_subsets are cut from another set instead)
subset_names=" "
for subset in ${eval_subsets}; do subset_names+="${subset%%:*} "; done
eval_sets=""
for set_name in ${pretrain_valid_set} ${finetune_valid_set} ${tune_set} ${test_sets} ${analysis_set}; do
    [[ "${subset_names}" == *" ${set_name} "* ]] && continue
    [[ " ${eval_sets} " == *" ${set_name} "* ]] || eval_sets+="${eval_sets:+ }${set_name}"
done

if run_stage 1; then
    begin_stage 1
    log "Stage 1: data preparation (local/data.sh)"
    if ${dry_run}; then
        # local/data.sh has its own dry run (what it would download or generate); show it.
        local/data.sh --datadir data --nj "${nj}" "${data_opts_words[@]+"${data_opts_words[@]}"}" --dry_run true \
            || fail "local/data.sh --dry_run true failed"
    elif ! is_done data; then
        run_logged data data/log/data.log local/data.sh --datadir data --nj "${nj}" \
            "${data_opts_words[@]+"${data_opts_words[@]}"}"
    fi
fi

if run_stage 2; then
    begin_stage 2
    log "Stage 2: formatting: duration filter, shapes, token list (dump/)"
    for set_name in ${pretrain_set} ${finetune_sets} ${eval_sets} ${subset_names}; do
        if ! ${dry_run} && [ -f dump/.done ] && [ ! -f "dump/${set_name}/speech_shape" ]; then
            log "  dump/${set_name} is missing (a set added since the last stage 2): formatting again"
            rm dump/.done
        fi
    done
    if ! is_done dump; then
        run_logged dump dump/log/format_data.log "${python}" -m dinosr_espnet.bin.format_data \
            --data_dir data --dump_dir dump --pretrain_sets "${pretrain_set}" \
            --finetune_sets "${finetune_sets}" --eval_sets "${eval_sets}" --subsets "${eval_subsets}" \
            --min_duration "${min_duration}" --max_duration "${max_duration}" \
            --finetune_max_duration "${finetune_max_duration}" \
            --token_list data/token_list/char/tokens.txt --lm_text data/local/lm/lm_text.txt
        require_files "stage 2" data/token_list/char/tokens.txt "dump/${pretrain_set}/speech_shape"
    fi
fi

if run_stage 3; then
    begin_stage 3
    if [ -n "${pretrained_model}" ]; then
        log "Stage 3: pre-training skipped: using the official model ${pretrained_model}"
        case "${pretrained_model}" in
            *.pth)
                require_files "--pretrained_model" "${pretrained_model}" "$(dirname "${pretrained_model}")/config.yaml" ;;
            *)
                if ! is_done exp/pretrain_official; then
                    # shellcheck disable=SC2086  # import_args is a list of options
                    run_logged exp/pretrain_official exp/pretrain_official/import.log \
                        "${python}" -m dinosr_espnet.bin.import_fairseq "${pretrained_model}" \
                        exp/pretrain_official/model.pth ${import_args}
                    require_files "import_fairseq" exp/pretrain_official/model.pth exp/pretrain_official/config.yaml
                fi ;;
        esac
    else
        log "Stage 3: self-supervised pre-training (${pretrain_tags})"
        for tag in ${pretrain_tags}; do
            output_dir="exp/pretrain_${tag}"
            is_done "${output_dir}" && continue
            distributed_args=()
            if [ "${num_nodes}" -gt 1 ]; then
                # One process per node, started by cuda_cmd (e.g. srun); ESPnet reads the Slurm variables.
                distributed_args=(--multiprocessing_distributed true --dist_launcher slurm
                                  --dist_init_method "file://$(pwd)/${output_dir}/.dist_init")
            fi
            JOB_PROGRESS="${progress_cmd}" run_cmd="${cuda_cmd}" run_logged "${output_dir}" "${output_dir}/train.log" \
                "${python}" -m dinosr_espnet.bin.dinosr_train --config "$(pretrain_config_of "${tag}")" \
                --ngpu "${ngpu}" --output_dir "${output_dir}" \
                --train_data_path_and_name_and_type "dump/${pretrain_set}/wav.scp,speech,sound" \
                --train_shape_file "dump/${pretrain_set}/speech_shape" \
                --valid_data_path_and_name_and_type "dump/${pretrain_valid_set}/wav.scp,speech,sound" \
                --valid_shape_file "dump/${pretrain_valid_set}/speech_shape" \
                --resume true "${distributed_args[@]+"${distributed_args[@]}"}" \
                "${pretrain_args_words[@]+"${pretrain_args_words[@]}"}"
            require_files "pre-training ${tag}" "${output_dir}/model.pth" "${output_dir}/config.yaml"
        done
    fi
fi

if run_stage 4; then
    begin_stage 4
    log "Stage 4: CTC fine-tuning (splits: ${finetune_splits}; inits: ${finetune_inits}; seeds: ${seeds})"
    for split in ${finetune_splits}; do
        train_set="$(finetune_set_of "${split}")"
        require_files "fine-tuning on ${split} (run stage 2 with this --finetune_splits first)" \
            "dump/${train_set}/speech_shape" "dump/${finetune_valid_set}/speech_shape"
        for init in ${finetune_inits}; do
            init_args=()
            if is_random_init "${init}"; then
                init_args=("${scratch_args_words[@]+"${scratch_args_words[@]}"}")
            else
                model="$(pretrained_model_of "${init}")"
                require_files "fine-tuning from ${init} (run stage 3 first)" "${model}"
                init_args=(--pretrained_model "${model}")  # a plain path: --encoder_conf would YAML-parse it
            fi
            split_words init_extra_words "$(finetune_init_args_of "${init}")"
            init_args+=("${init_extra_words[@]+"${init_extra_words[@]}"}")
            for seed in ${seeds}; do
                output_dir="$(finetune_dir_of "${init}" "${split}" "${seed}")"
                is_done "${output_dir}" && continue
                JOB_PROGRESS="${progress_cmd}" run_cmd="${cuda_cmd}" run_logged "${output_dir}" "${output_dir}/train.log" \
                    "${python}" -m dinosr_espnet.bin.asr_train --config "$(finetune_config_of "${split}")" \
                    --ngpu "${ngpu}" --output_dir "${output_dir}" --seed "${seed}" \
                    --token_list data/token_list/char/tokens.txt \
                    --train_data_path_and_name_and_type "dump/${train_set}/wav.scp,speech,sound" \
                    --train_data_path_and_name_and_type "dump/${train_set}/text,text,text" \
                    --train_shape_file "dump/${train_set}/speech_shape" \
                    --train_shape_file "dump/${train_set}/text_shape.char" \
                    --valid_data_path_and_name_and_type "dump/${finetune_valid_set}/wav.scp,speech,sound" \
                    --valid_data_path_and_name_and_type "dump/${finetune_valid_set}/text,text,text" \
                    --valid_shape_file "dump/${finetune_valid_set}/speech_shape" \
                    --valid_shape_file "dump/${finetune_valid_set}/text_shape.char" \
                    "${init_args[@]+"${init_args[@]}"}" --resume true \
                    "${finetune_args_words[@]+"${finetune_args_words[@]}"}"
                require_files "fine-tuning ${output_dir}" "${output_dir}/config.yaml" \
                    "${output_dir}/valid.cer_ctc.best.pth"
            done
        done
    done
fi

if run_stage 5; then
    begin_stage 5
    log "Stage 5: ${lm_order}-gram language model (${lm}) and lexicon"
    if ! is_done data/local/lm/build_lm; then
        arpa_args=()
        [ "${lm}" = official ] && arpa_args=(--arpa data/local/lm/official_4gram.arpa.gz)
        run_logged data/local/lm/build_lm data/local/lm/build_lm/build_lm.log \
            "${python}" -m dinosr_espnet.bin.build_lm --text data/local/lm/lm_text.txt --order "${lm_order}" \
            --token_list data/token_list/char/tokens.txt --out_dir data/local/lm \
            "${arpa_args[@]+"${arpa_args[@]}"}" "${lm_args_words[@]+"${lm_args_words[@]}"}"
        require_files "stage 5" "data/local/lm/${lm_order}gram.bin" data/local/lm/lexicon.txt
    fi
fi

if run_stage 6; then
    begin_stage 6
    log "Stage 6: decoding: Viterbi and lexicon + ${lm_order}-gram (tuned on ${tune_set})"
    decode_test_sets=""
    for set_name in ${test_sets}; do decode_test_sets+=" dump/${set_name}"; done
    for split in ${finetune_splits}; do
        for init in ${finetune_inits}; do
            for seed in ${seeds}; do
                model_dir="$(finetune_dir_of "${init}" "${split}" "${seed}")"
                is_done "${model_dir}/decode" && continue
                require_files "decoding (run stage 4 first)" "${model_dir}/config.yaml" \
                    "${model_dir}/valid.cer_ctc.best.pth"
                run_cmd="${decode_cmd}" run_logged "${model_dir}/decode" "${model_dir}/decode/decode.log" \
                    "${python}" -m dinosr_espnet.bin.decode --asr_train_config "${model_dir}/config.yaml" \
                    --asr_model_file "${model_dir}/valid.cer_ctc.best.pth" \
                    --lexicon data/local/lm/lexicon.txt --lm "data/local/lm/${lm_order}gram.bin" \
                    --decode_config "${decode_config}" --tune_set "dump/${tune_set}" \
                    --test_sets "${decode_test_sets# }" --output_dir "${model_dir}/decode" --ngpu "${ngpu}" \
                    "${decode_args_words[@]+"${decode_args_words[@]}"}"
            done
        done
    done
fi

if run_stage 7; then
    begin_stage 7
    log "Stage 7: scoring (RESULTS.md)"
    newest_decode="$(find exp -path '*/decode/.done' -newer RESULTS.md 2>/dev/null | head -n 1 || true)"
    if [ -f RESULTS.md ] && [ -z "${newest_decode}" ] && ! ${dry_run}; then
        log "  RESULTS.md is newer than every decoding, done already (remove it to redo)"
    else
        write_results
        ${dry_run} || cat RESULTS.md
    fi
fi

if run_stage 8; then
    begin_stage 8
    log "Stage 8: unit analysis (codeword purity against frame phones on ${analysis_set})"
    for tag in ${pretrain_tags}; do
        require_files "unit analysis (run stage 3 first)" "exp/pretrain_${tag}/model.pth"
        # The trained model, then the same architecture with random weights: the PNMI baseline.
        for weights in trained random_init; do
            output_dir="exp/pretrain_${tag}/units_${analysis_set}"
            weight_args=()
            if [ "${weights}" = random_init ]; then
                output_dir+="_random_init"
                weight_args=(--random_init)
            fi
            is_done "${output_dir}" && continue
            run_logged "${output_dir}" "${output_dir}/analyze_units.log" \
                "${python}" -m dinosr_espnet.bin.analyze_units --model_dir "exp/pretrain_${tag}" \
                --data_dir "dump/${analysis_set}" --output_dir "${output_dir}" \
                "${weight_args[@]+"${weight_args[@]}"}" "${analysis_args_words[@]+"${analysis_args_words[@]}"}"
        done
    done
    # RESULTS.md again with the unit tables, when there are decodings to report and new analyses
    newest_units="$(find exp -path '*/units_*/units.json' -newer RESULTS.md 2>/dev/null | head -n 1 || true)"
    if ${dry_run} || { compgen -G "exp/finetune_*/decode/.done" > /dev/null && [ -n "${newest_units}" ]; }; then
        log "  RESULTS.md again, now with the unit tables"
        write_results
    fi
fi

record_stage_time finished
log "Finished stages ${stage}-${stop_stage}"
