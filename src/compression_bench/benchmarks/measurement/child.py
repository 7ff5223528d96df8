"""The one way the suite starts a child process: a function of one of its modules, run by a fresh
interpreter of this Python with this process's import path (so that a user's model classes and
registrations, importable here, import there too). Peak memory (:mod:`.peakmem`) and the Inductor
runtime's compiles use it."""
from __future__ import annotations

import os
import signal
import subprocess
import sys


def run_child(target: str, *args: str, timeout: float | None = None, group: bool = False) -> subprocess.CompletedProcess:
    """Run ``target`` (``"package.module:function"``) with the string ``args`` in a child process;
    its stdout and stderr come back as text. :class:`subprocess.TimeoutExpired` past ``timeout``, the
    child killed. ``group``: the child leads a process group of its own, and the whole group (the
    processes it started too, such as Inductor's compile workers and C++ compilers) is killed on the
    timeout or when this process is interrupted; the child then gets no Ctrl-C of its own from the
    terminal, so this process stops it."""
    module, function = target.split(":")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    code = f"import sys; from {module} import {function}; {function}(*sys.argv[1:])"
    command = [sys.executable, "-c", code, *args]
    if not group:
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    with subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          start_new_session=True) as child:
        try:
            out, err = child.communicate(timeout=timeout)
        except BaseException:  # the timeout, or Ctrl-C here: nothing of the child's may outlive it
            _kill_group(child)
            raise
    return subprocess.CompletedProcess(command, child.returncode, out, err)


def _kill_group(child: subprocess.Popen) -> None:
    """Kill ``child``'s process group (it leads one: ``start_new_session``), or the child alone where
    there are no process groups; wait for it."""
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except (AttributeError, ProcessLookupError, PermissionError):  # no killpg (Windows), or gone already
        child.kill()
    child.wait()
