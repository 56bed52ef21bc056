"""scripts/setup.sh refuses to report a ready environment whose torch does not import.

The script is run against a stand-in virtual environment in a temporary folder: its ``python``
fails every import (a partial torch install), its ``pip`` succeeds without doing anything, so the
script never touches the network, apt or the real ``.venv``.
"""

import os
import stat
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SETUP = os.path.join(ROOT, "scripts", "setup.sh")

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="a bash script")


def _script(path, body):
    path.write_text("#!/usr/bin/env bash\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def _fake_venv(tmp_path, python_body):
    bin_dir = tmp_path / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    _script(bin_dir / "python", python_body)
    _script(bin_dir / "pip", "exit 0\n")
    for name in ("chromium", "chromedriver"):  # found: the script installs no browser
        _script(bin_dir / name, "exit 0\n")
    return tmp_path / "venv"


def _run(venv):
    # SKAL_DATA set and the browser on PATH: the script's apt-get steps are skipped
    env = dict(os.environ, SKAL_VENV=str(venv), SKAL_DATA=str(venv),
               PATH=f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}")
    return subprocess.run(["bash", SETUP], env=env, capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)


def test_setup_fails_when_torch_does_not_import(tmp_path):
    venv = _fake_venv(tmp_path, 'echo "ImportError: libnccl.so.2: cannot open" >&2\nexit 1\n')
    proc = _run(venv)
    assert proc.returncode != 0
    assert "does not import" in proc.stderr
    assert "ready" not in proc.stdout


def test_setup_fails_when_the_final_import_fails(tmp_path):
    # every check passes (python exits 0) but the version line prints nothing and fails
    venv = _fake_venv(tmp_path, 'case "$*" in *__version__*) exit 1;; esac\nexit 0\n')
    (venv / ".skal-installed").touch()  # newer than setup.cfg: no reinstall
    proc = _run(venv)
    assert proc.returncode != 0, proc.stdout
    assert "[setup] ready" not in proc.stdout
