"""An Inductor compile child that hangs is stopped at its timeout, with the processes it started, and
the variant fails with a reason instead of the session hanging. The child is a stand-in that sleeps (a
real compile takes tens of seconds), so the test takes a few seconds; tests/test_runtime_inductor.py
compiles for real."""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from compression_bench.benchmarks.runtimes import Source, inductor
from compression_bench.benchmarks.errors import VariantFailure
from compression_bench.compression import get_method

STAND_IN = '''
import os, subprocess, sys, time
from pathlib import Path


def _child(folder):
    """A compile that hangs, after starting a process of its own (as Inductor's compile workers are)."""
    sleeper = subprocess.Popen([sys.executable, "-P", "-c", "import time; time.sleep(60)"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    Path(os.environ["STAND_IN_PID_FILE"]).write_text(str(sleeper.pid))
    time.sleep(10)
'''


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, killed and not yet reaped, does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def test_a_compile_child_past_its_timeout_is_killed_with_its_children_and_fails_the_variant(
        tmp_path, monkeypatch):
    (tmp_path / "cb_stand_in_compile.py").write_text(STAND_IN)
    monkeypatch.syspath_prepend(str(tmp_path))  # the child's import path is this process's
    monkeypatch.setattr(inductor, "_MODULE", "cb_stand_in_compile")
    monkeypatch.setenv("STAND_IN_PID_FILE", str(tmp_path / "sleeper.pid"))
    monkeypatch.setenv(inductor.TIMEOUT_VARIABLE, "1")
    source = Source(method=get_method("original"), float_model=nn.Sequential(nn.Flatten(), nn.Linear(16, 4)).eval(),
                    example=torch.randn(2, 1, 4, 4), calibration=lambda: iter(()))
    t0 = time.monotonic()
    try:
        with pytest.raises(TimeoutError) as caught:
            inductor.INDUCTOR.build(source)
        assert time.monotonic() - t0 < 8  # export (a second or two) and the 1 s timeout, not the child's 10 s
        status = VariantFailure("", caught.value).status  # how the session's row shows it (runtime_variants)
        assert status.startswith("failed: TimeoutError: inductor: the compile process ran past 1 s")
        assert inductor.TIMEOUT_VARIABLE in str(caught.value)
        if Path("/proc").is_dir():  # the process the child started went with it
            pid = int((tmp_path / "sleeper.pid").read_text())
            deadline = time.monotonic() + 5
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not _alive(pid)
    finally:
        pid_file = tmp_path / "sleeper.pid"
        if pid_file.exists() and _alive(int(pid_file.read_text())):
            os.kill(int(pid_file.read_text()), signal.SIGKILL)


def test_the_compile_timeout_defaults_to_twenty_minutes_grows_with_the_graph_and_reads_its_variable(monkeypatch):
    monkeypatch.delenv(inductor.TIMEOUT_VARIABLE, raising=False)
    assert inductor.compile_timeout(10) == inductor.COMPILE_TIMEOUT_S == 20 * 60
    assert inductor.compile_timeout(10_000) == 10_000 * inductor.COMPILE_S_PER_NODE > 20 * 60
    monkeypatch.setenv(inductor.TIMEOUT_VARIABLE, "90")
    assert inductor.compile_timeout(10_000) == 90
    for off in ("0", "none"):
        monkeypatch.setenv(inductor.TIMEOUT_VARIABLE, off)
        assert inductor.compile_timeout(10) is None
    monkeypatch.setenv(inductor.TIMEOUT_VARIABLE, "soon")
    with pytest.raises(ValueError, match=inductor.TIMEOUT_VARIABLE):
        inductor.compile_timeout(10)
