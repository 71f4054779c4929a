"""utils/parse_options.sh and the template's option handling."""
import re

from recipe_helpers import TEMPLATE, UTILS, run_bash

PROBE = """
stage=1; help_stage="first stage"
test_sets="a b"
dry_run=false
option_names="stage test_sets dry_run"
help_message="Usage: probe"
. {utils}/parse_options.sh
echo "stage=$stage test_sets=$test_sets dry_run=$dry_run rest=$*"
"""


def run_probe(tmp_path, *arguments):
    script = tmp_path / "probe.sh"
    script.write_text(PROBE.format(utils=UTILS))
    return run_bash([str(script), *arguments], cwd=tmp_path)


def test_space_and_equals_forms_set_the_variables(tmp_path):
    result = run_probe(tmp_path, "--stage", "3", "--test_sets=x y z", "--dry-run", "true", "left")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "stage=3 test_sets=x y z dry_run=true rest=left"


def test_unknown_option_is_an_error_listing_the_valid_ones(tmp_path):
    result = run_probe(tmp_path, "--stgae", "3")
    assert result.returncode != 0
    assert "unknown option --stgae" in result.stderr
    for name in ("--stage", "--test_sets", "--dry_run"):
        assert name in result.stderr


def test_option_without_value_is_an_error(tmp_path):
    result = run_probe(tmp_path, "--stage")
    assert result.returncode != 0
    assert "--stage needs a value" in result.stderr


def test_help_shows_values_after_the_other_options(tmp_path):
    result = run_probe(tmp_path, "--stage", "5", "--help")
    assert result.returncode == 0
    assert re.search(r"--stage\s+\[5\]", result.stdout)
    assert "first stage" in result.stdout
    assert re.search(r"--test_sets\s+\[a b\]", result.stdout)
    assert "stage=" not in result.stdout  # exits before the script goes on


def declared_template_options():
    """(name, default) of every option the template declares in option_names."""
    text = TEMPLATE.read_text()
    names = re.search(r'option_names="([^"]*)"', text).group(1).split()
    defaults = {}
    for name in names:
        match = re.search(rf'^{name}=("([^"]*)"|(\S*?));', text, flags=re.MULTILINE)
        assert match, f"option {name} has no 'name=default;' declaration"
        defaults[name] = match.group(2) if match.group(2) is not None else match.group(3)
    return defaults


def test_template_help_lists_every_option_with_its_default(tmp_path):
    result = run_bash([str(TEMPLATE), "--help"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    defaults = declared_template_options()
    assert {"stage", "stop_stage", "ngpu", "num_nodes", "nj", "pretrain_config", "pretrain_tags",
            "finetune_config", "finetune_splits", "finetune_inits", "seeds", "decode_config", "lm",
            "pretrained_model", "dry_run"} <= set(defaults)
    for name, default in defaults.items():
        assert f"--{name}" in result.stdout
        assert re.search(rf"--{name}\s+\[{re.escape(default)}\]", result.stdout), name


def test_template_rejects_unknown_option_and_bad_values(tmp_path):
    unknown = run_bash([str(TEMPLATE), "--stop-stag", "3"], cwd=tmp_path)
    assert unknown.returncode != 0 and "unknown option --stop_stag" in unknown.stderr
    bad_lm = run_bash([str(TEMPLATE), "--lm", "huge"], cwd=tmp_path)
    assert bad_lm.returncode != 0 and "--lm must be official or build" in bad_lm.stderr
    bad_stage = run_bash([str(TEMPLATE), "--stage", "two"], cwd=tmp_path)
    assert bad_stage.returncode != 0 and "--stage must be a non-negative integer" in bad_stage.stderr
