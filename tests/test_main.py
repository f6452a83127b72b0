"""``python -m polyfeed``: the command line as a module."""

from __future__ import annotations

import subprocess
import sys

from tests.cli.harness import BOUND_S, subprocess_env


def test_python_m_polyfeed_runs_the_command_line() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "polyfeed", "--help"],
        capture_output=True,
        env=subprocess_env(),
        timeout=BOUND_S,
        check=False,
    )
    assert done.returncode == 0
    assert b"demo" in done.stdout and b"watch" in done.stdout


def test_a_bad_argument_exits_2_from_the_module_too() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "polyfeed", "watch"],
        capture_output=True,
        env=subprocess_env(),
        timeout=BOUND_S,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.decode().count("\n") == 1 and b"Traceback" not in done.stderr
