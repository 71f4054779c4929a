"""Smoke test: the benchmark runs end to end at the smallest sizes and reports every figure.

It checks presence and sign of the figures, never their values (timings belong in BENCHMARKS.md).
"""
import json
import math
import shutil
from pathlib import Path

import pytest
from conftest import REPO_ROOT, run_module

MODEL_FIGURES = ["student_parameters", "student_forward_audio_seconds_per_second",
                 "student_train_step_audio_seconds_per_second", "student_train_step_gflop",
                 "student_train_step_gflop_per_second", "student_train_step_mfu",
                 "student_train_step_peak_memory_mb", "matmul_ceiling_gflop_per_second"]
REFERENCE_FIGURES = ["reference_parameters", "reference_forward_audio_seconds_per_second",
                     "reference_train_step_audio_seconds_per_second", "forward_speed_ratio_ours_over_reference",
                     "train_step_speed_ratio_ours_over_reference", "forward_speed_ratio_ours_over_reference_process_cpu",
                     "train_step_speed_ratio_ours_over_reference_process_cpu", "reference_train_step_gflop_per_second",
                     "reference_train_step_peak_memory_mb"]
CODEBOOK_FIGURES = ["dinosr_train_step_audio_seconds_per_second", "student_only_train_step_audio_seconds_per_second",
                    "dinosr_overhead_ratio", "dinosr_overhead_ratio_process_cpu", "dinosr_flop_ratio", "codebook_assign_fraction_of_step", "codebook_update_fraction_of_step",
                    "teacher_forward_fraction_of_step", "ema_teacher_step_fraction_of_step",
                    "codebooks_plus_ema_fraction_of_step", "dinosr_train_step_gflop_per_second",
                    "dinosr_train_step_mfu", "dinosr_train_step_peak_memory_mb", "matmul_ceiling_gflop_per_second"]
DATA_FIGURES = ["read_flac_utterances_per_second", "read_flac_audio_seconds_per_second",
                "dataloader_utterances_per_second_per_worker", "dataloader_audio_seconds_per_second_per_worker",
                "padding_waste_random_batches", "padding_waste_sorted_batches",
                "crop_loss_random_batches", "crop_loss_sorted_batches"]
DECODE_FIGURES = ["greedy_rtf"] + [f"lexicon_4gram_beam{beam}_{kind}" for beam in (50, 500, 1500)
                                   for kind in ("rtf", "process_cpu_rtf")]
ENVIRONMENT_KEYS = ["cpu_model", "cpu_cores", "torch_threads", "gpu", "torch", "espnet", "dinosr_espnet_git",
                    "load_average_1_5_15_min", "process_cpu_share_of_wall"]


def transformers_installed() -> bool:
    try:
        import transformers  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture(scope="module")
def smallest_report(tmp_path_factory):
    if not (REPO_ROOT / "tools/kenlm/bin/lmplz").is_file():
        pytest.skip("KenLM lmplz not built (make kenlm)")
    output = tmp_path_factory.mktemp("benchmark") / "bench.json"
    process = run_module("dinosr_espnet.bin.benchmark", "--smallest", "--output_json", str(output),
                         cwd=REPO_ROOT, timeout=120)
    return json.loads(output.read_text()), process.stdout


@pytest.mark.timeout(150)
def test_smallest_run_reports_every_figure_positive(smallest_report):
    report, _ = smallest_report
    expected = {"model": MODEL_FIGURES + (REFERENCE_FIGURES if transformers_installed() else []),
                "codebook": CODEBOOK_FIGURES, "data": DATA_FIGURES, "decode": DECODE_FIGURES}
    for section, names in expected.items():
        assert report["sections"][section]["status"] == "measured", report["sections"][section]
        figures = report["sections"][section]["figures"]
        for name in names:
            assert name in figures, f"{section}: figure {name} missing; got {sorted(figures)}"
            value = figures[name]["value"]
            assert math.isfinite(value) and value > 0, f"{section}.{name} = {value}"


@pytest.mark.timeout(150)
def test_smallest_run_records_machine_and_versions(smallest_report):
    report, stdout = smallest_report
    for key in ENVIRONMENT_KEYS:
        assert key in report["environment"], key
    assert report["environment"]["torch_threads"] >= 1
    assert "| dinosr_overhead_ratio |" in stdout  # the markdown table reaches stdout


def test_missing_transformers_skips_the_comparison_with_a_message(tmp_path):
    # A stub package that fails to import stands in for an environment without the bench extra.
    stub = tmp_path / "transformers"
    stub.mkdir()
    (stub / "__init__.py").write_text("raise ImportError('stub: transformers not installed')\n")
    output = tmp_path / "bench.json"
    run_module("dinosr_espnet.bin.benchmark", "--smallest", "--sections", "model", "--output_json", str(output),
               cwd=REPO_ROOT, timeout=120, env={"PYTHONPATH": str(tmp_path)})
    model = json.loads(output.read_text())["sections"]["model"]
    assert model["status"] == "measured"
    assert any("pip install" in message and "transformers" in message for message in model["messages"])
    assert "reference_parameters" not in model["figures"]
    assert model["figures"]["student_train_step_audio_seconds_per_second"]["value"] > 0


def test_unknown_section_is_rejected():
    process = run_module("dinosr_espnet.bin.benchmark", "--sections", "model,warp", cwd=REPO_ROOT, check=False,
                         timeout=60)
    assert process.returncode != 0
    assert "warp" in process.stderr


COMPILED_MODEL_FIGURES = ["compiled_" + name for name in MODEL_FIGURES[1:-1]] + [
    "compiled_speedup_student_forward", "compiled_speedup_student_train_step",
    "compiled_speedup_student_train_step_process_cpu", "compiled_first_call_seconds_student_train_step"]
COMPILED_CODEBOOK_FIGURES = ["compiled_" + name for name in CODEBOOK_FIGURES[:-1]] + [
    "compiled_speedup_dinosr_train_step", "compiled_speedup_student_only_train_step",
    "compiled_speedup_dinosr_train_step_process_cpu"]


@pytest.mark.timeout(400)
def test_compile_reports_every_model_figure_for_the_compiled_twin_too(tmp_path):
    """--compile (aot_eager here: no code generation, see tests/nets/test_compilation.py)."""
    output = tmp_path / "bench.json"
    run_module("dinosr_espnet.bin.benchmark", "--smallest", "--sections", "model,codebook", "--compile",
               "--compile_backend", "aot_eager", "--output_json", str(output), cwd=REPO_ROOT, timeout=360)
    report = json.loads(output.read_text())
    assert report["settings"]["compile"] is True
    for section, names in (("model", COMPILED_MODEL_FIGURES), ("codebook", COMPILED_CODEBOOK_FIGURES)):
        figures = report["sections"][section]["figures"]
        for name in names:
            assert name in figures, f"{section}: figure {name} missing; got {sorted(figures)}"
            value = figures[name]["value"]
            assert math.isfinite(value) and value > 0, f"{section}.{name} = {value}"
