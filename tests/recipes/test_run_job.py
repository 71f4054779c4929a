"""utils/run_job.sh: the local job runner of cmd.sh."""
from recipe_helpers import UTILS, run_bash

RUNNER = str(UTILS / "run_job.sh")


def test_logs_output_and_returns_the_exit_status(tmp_path):
    log = tmp_path / "logs" / "job.log"
    ok = run_bash([RUNNER, str(log), "bash", "-c", "echo hello; echo oops >&2"], cwd=tmp_path)
    assert ok.returncode == 0
    text = log.read_text()
    assert "hello" in text and "oops" in text and "exit status 0" in text
    failed = run_bash([RUNNER, str(log), "bash", "-c", "exit 7"], cwd=tmp_path)
    assert failed.returncode == 7
    assert "exit status 7" in log.read_text()


def test_job_range_runs_each_index_with_its_own_log(tmp_path):
    result = run_bash([RUNNER, "JOB=1:3", str(tmp_path / "log.JOB"), "bash", "-c", "echo index JOB"],
                      cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for index in (1, 2, 3):
        assert f"index {index}" in (tmp_path / f"log.{index}").read_text()


def test_job_range_fails_if_any_job_fails(tmp_path):
    result = run_bash([RUNNER, "JOB=1:3", str(tmp_path / "log.JOB"), "bash", "-c", "test JOB -ne 2"],
                      cwd=tmp_path)
    assert result.returncode != 0
    assert "job 2 failed" in result.stderr and "log.2" in result.stderr
