"""Section "config" of the benchmark: variants of a model config timed against it in one process."""
import json

import pytest
from conftest import REPO_ROOT, run_module

from dinosr_espnet.benchmark.config_section import ConfigVariantError, parse_variant


def test_a_variant_is_a_name_and_yaml_valued_overrides():
    name, overrides = parse_variant("50hz_dropout:fbank_time_strides=[2, 1]; mask_length=10;dropout=0.1")
    assert name == "50hz_dropout"
    assert overrides == {"fbank_time_strides": [2, 1], "mask_length": 10, "dropout": 0.1}


@pytest.mark.parametrize("text", ["no_colon", ":dropout=0.1", "bad name:dropout=0.1", "empty:",
                                  "novalue:dropout", "badyaml:fbank_time_strides=[2, 1"])
def test_a_malformed_variant_is_refused_naming_it(text):
    with pytest.raises(ConfigVariantError, match="--config_variant"):
        parse_variant(text)


@pytest.mark.timeout(300)
def test_config_section_times_the_demo_step_against_its_variants(tmp_path):
    output = tmp_path / "bench.json"
    run_module("dinosr_espnet.bin.benchmark", "--sections", "config", "--smallest", "--output_json", str(output),
               "--config_variant", "same:dropout=0.0",
               "--config_variant", "half_rate:fbank_time_strides=[2, 4];mask_length=2",
               cwd=tmp_path, timeout=280)
    section = json.loads(output.read_text())["sections"]["config"]
    figures = {name: figure["value"] for name, figure in section["figures"].items()}
    for step in ("config_train_step", "variant_same_train_step", "variant_half_rate_train_step"):
        assert figures[f"{step}_audio_seconds_per_second"] > 0
    # The demo config has dropout 0.0 already: the same work, up to the masked frames each step samples
    # (heads and codebooks run on those). Half the frames (12.5 Hz instead of 25 Hz)
    # of the same Transformer: well under the config's FLOPs (attention is quadratic, the front end not).
    assert figures["variant_same_train_step_gflop"] == pytest.approx(figures["config_train_step_gflop"], rel=0.02)
    assert figures["variant_half_rate_train_step_gflop"] < 0.7 * figures["config_train_step_gflop"]
    assert figures["variant_half_rate_train_step_time_ratio_over_config"] > 0


def test_an_unknown_field_in_a_variant_is_an_error_naming_it(tmp_path):
    process = run_module("dinosr_espnet.bin.benchmark", "--sections", "config", "--smallest",
                         "--config_variant", "typo:fbank_time_stride=[2, 2]", cwd=tmp_path, check=False, timeout=120)
    assert process.returncode != 0
    assert "fbank_time_stride" in process.stderr
