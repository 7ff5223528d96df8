"""The one way the suite starts a child process: a function of one of its modules, run by a fresh
interpreter of this Python with this process's import path (so that a user's model classes and
registrations, importable here, import there too). Peak memory (:mod:`.peakmem`) and the Inductor
runtime's compiles use it."""
from __future__ import annotations

import os
import subprocess
import sys


def run_child(target: str, *args: str, timeout: float | None = None) -> subprocess.CompletedProcess:
    """Run ``target`` (``"package.module:function"``) with the string ``args`` in a child process;
    its stdout and stderr come back as text. :class:`subprocess.TimeoutExpired` past ``timeout``."""
    module, function = target.split(":")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    code = f"import sys; from {module} import {function}; {function}(*sys.argv[1:])"
    return subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True,
                          timeout=timeout)
