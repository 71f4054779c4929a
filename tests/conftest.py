"""Shared pytest configuration: paths and a helper to run project commands in a subprocess."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def run_module(module: str, *args: str, cwd=None, timeout: float = 600, check: bool = True,
               env: dict = None) -> subprocess.CompletedProcess:
    """Run ``python -m module args`` with the test interpreter; return the completed process."""
    full_env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"), **(env or {})}
    proc = subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"python -m {module} {' '.join(args)} failed ({proc.returncode}):\n"
                             f"--- stdout ---\n{proc.stdout[-4000:]}\n--- stderr ---\n{proc.stderr[-4000:]}")
    return proc


@pytest.fixture
def repo_root() -> Path:
    return REPO_ROOT
