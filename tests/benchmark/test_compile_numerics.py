"""The eager-vs-compiled numerical check (bin/compare_compiled): it passes for the compiled model
and fails when the compiled run computes something else."""
import json

import pytest

from dinosr_espnet.benchmark import compile_numerics
from dinosr_espnet.benchmark.settings import BenchmarkSettings
from dinosr_espnet.bin import compare_compiled


def tiny_settings(backend):
    return BenchmarkSettings(dtype="fp32", batch_size=2, seconds=0.5, smallest=True, compile=True,
                             compile_backend=backend)


@pytest.mark.timeout(300)
def test_compare_compiled_passes_for_the_compiled_model_and_writes_its_report(tmp_path, capsys):
    output = tmp_path / "numerics.json"
    status = compare_compiled.main(["--smallest", "--dtype", "fp32", "--batch_size", "2", "--seconds", "0.5",
                                    "--steps", "2", "--profile_steps", "0", "--compile_backend", "aot_eager",
                                    "--output_json", str(output)])
    assert status == 0
    report = json.loads(output.read_text())
    assert report["numerics"]["passed"] is True
    assert all(report["numerics"]["fp32_islands"].values())
    assert [len(run) for run in report["numerics"]["runs"].values()] == [2, 2, 2]
    assert "compiled within bf16 noise of eager: **yes**" in capsys.readouterr().out


@pytest.mark.timeout(300)
def test_a_compiled_run_that_computes_something_else_fails(monkeypatch):
    from dinosr_espnet.benchmark import compiled

    # a "compiled" model whose codebooks move faster: loss/target_ppl/counts drift from eager
    monkeypatch.setattr(compiled, "compiled_config",
                        lambda config, settings: config.replace(compile=True, compile_backend="eager",
                                                                codebook_decay=0.5))
    report = compile_numerics.compare(tiny_settings("eager"), steps=2, log=lambda message: None)
    assert not report.passed
    assert report.figures["codebook_counts_max_difference_compiled_vs_eager"] > 0
