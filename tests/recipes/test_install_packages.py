"""utils/install_debian_packages.sh waits (bounded, saying so) while another apt/dpkg holds the lock."""
from recipe_helpers import UTILS, run_bash

FAKE_APT_GET = """#!/usr/bin/env bash
# Fails with apt's lock message while the counter file says the lock is still held.
echo "apt-get $*" >> "$FAKE_DIR/calls.txt"
held=$(cat "$FAKE_DIR/held")
if [ "$held" = never ] || [ "$held" -gt 0 ]; then
    [ "$held" = never ] || echo $((held - 1)) > "$FAKE_DIR/held"
    echo "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 4242 (apt-get)" >&2
    exit 100
fi
[ -n "${FAKE_APT_FAIL:-}" ] && { echo "E: Unable to locate package nosuchpackage" >&2; exit 100; }
exit 0
"""


def _fake_tools(tmp_path, held):
    tools = tmp_path / "bin"
    tools.mkdir()
    scripts = {"apt-get": FAKE_APT_GET, "id": "#!/usr/bin/env bash\necho 0\n",
               "dpkg-query": "#!/usr/bin/env bash\necho -n 'unknown ok not-installed'\n"}
    for name, text in scripts.items():
        (tools / name).write_text(text)
        (tools / name).chmod(0o755)
    (tmp_path / "held").write_text(f"{held}\n")
    (tmp_path / "packages.txt").write_text("sox  # comment\nflite\n")
    import os
    return {"PATH": f"{tools}:{os.environ['PATH']}", "FAKE_DIR": str(tmp_path), "DPKG_LOCK_POLL_SECONDS": "0.1"}


def _install(tmp_path, env):
    return run_bash([str(UTILS / "install_debian_packages.sh"), str(tmp_path / "packages.txt")], cwd=tmp_path,
                    env=env, timeout=60)


def test_waits_for_the_dpkg_lock_then_installs(tmp_path):
    env = _fake_tools(tmp_path, held=3)
    result = _install(tmp_path, env)
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("holds the package lock; waiting") == 3
    calls = (tmp_path / "calls.txt").read_text().splitlines()
    assert calls[-2:] == ["apt-get update -q", "apt-get install -y -q --no-install-recommends sox flite"]


def test_gives_up_after_the_timeout_with_a_message(tmp_path):
    env = {**_fake_tools(tmp_path, held="never"), "DPKG_LOCK_TIMEOUT": "1"}
    result = _install(tmp_path, env)
    assert result.returncode == 1
    assert "still holds the package lock after 1 s" in result.stderr and "DPKG_LOCK_TIMEOUT" in result.stderr


def test_other_apt_errors_fail_at_once(tmp_path):
    env = {**_fake_tools(tmp_path, held=0), "FAKE_APT_FAIL": "1"}
    result = _install(tmp_path, env)
    assert result.returncode == 1
    assert "Unable to locate package" in result.stderr and "waiting" not in result.stderr
    assert len((tmp_path / "calls.txt").read_text().splitlines()) == 1
