#!/usr/bin/env bash
# Parse "--name value" and "--name=value" command-line options into shell variables.
#
# Source it after declaring the options and their defaults:
#
#     stage=1          # help_stage="first stage to run"   (optional one-line help per option)
#     option_names="stage stop_stage ..."
#     help_message="Usage: $0 [options]"
#     . utils/parse_options.sh
#
# Every name in $option_names may be set as --name value or --name=value (dashes in the
# name may be written as underscores or dashes). An unknown option is an error that lists the
# valid ones. --help prints every option with its value after parsing (= the recipe's default
# when only --help is given) and exits 0. Non-option arguments are left in "$@".
# Why not getopt: option names here are data (the caller's list), and values may contain spaces.

if [ -z "${option_names:-}" ]; then
    echo "parse_options.sh: the caller must set option_names before sourcing it" >&2
    exit 2
fi

_print_option_help() {
    local name value description
    [ -n "${help_message:-}" ] && printf '%s\n\n' "${help_message}"
    echo "Options (current value in brackets):"
    for name in ${option_names}; do
        value="${!name}"
        description="help_${name}"
        printf '  --%-22s [%s]\n' "${name}" "${value}"
        [ -n "${!description:-}" ] && printf '      %s\n' "${!description}"
    done
    return 0
}

_is_option_name() {
    local candidate
    for candidate in ${option_names}; do
        [ "${candidate}" = "$1" ] && return 0
    done
    return 1
}

_show_help=false
_positional_arguments=()
while [ $# -gt 0 ]; do
    case "$1" in
        --help|-h)
            _show_help=true
            shift
            ;;
        --*=*)
            _name="${1%%=*}"; _name="${_name#--}"; _name="${_name//-/_}"
            _value="${1#*=}"
            if ! _is_option_name "${_name}"; then
                echo "$0: unknown option --${_name}. Valid options: $(printf -- '--%s ' ${option_names})" >&2
                exit 2
            fi
            printf -v "${_name}" '%s' "${_value}"
            shift
            ;;
        --*)
            _name="${1#--}"; _name="${_name//-/_}"
            if ! _is_option_name "${_name}"; then
                echo "$0: unknown option --${_name}. Valid options: $(printf -- '--%s ' ${option_names})" >&2
                exit 2
            fi
            if [ $# -lt 2 ]; then
                echo "$0: option --${_name} needs a value" >&2
                exit 2
            fi
            printf -v "${_name}" '%s' "$2"
            shift 2
            ;;
        *)
            _positional_arguments+=("$1")
            shift
            ;;
    esac
done
set -- "${_positional_arguments[@]+"${_positional_arguments[@]}"}"
unset _name _value _positional_arguments

if ${_show_help}; then
    _print_option_help
    exit 0
fi
unset _show_help
