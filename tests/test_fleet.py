"""Many machines (e2e): sessions logged to a real MLflow tracking server on 127.0.0.1 (SQLite backend
store, local artifact root), read back as one table; the server killed mid-run; prepared artifacts
exported from one cache and imported into another. Every server is started and stopped here.

A second machine is the same one with its capability capped (``ATEN_CPU_CAPABILITY=default``): its
class and machine key differ, as another CPU's would, and its instruction-set-specific artifacts
(ONNX Runtime's INT8 format, Inductor packages) are keyed apart.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("mlflow")

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[1]
MODEL = "EnhancedLeNet5"
OTHER_MACHINE = {"ATEN_CPU_CAPABILITY": "default"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``mlflow server`` on 127.0.0.1 with a SQLite store and artifacts under ``root``; restartable on
    the same port and store."""

    def __init__(self, root: Path):
        self.root, self.port, self.proc = root, _free_port(), None
        self.uri = f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 180.0) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        log = open(self.root / "server.log", "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-P", "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{self.root / 'mlflow.db'}",
             "--artifacts-destination", str(self.root / "artifacts"), "--host", "127.0.0.1",
             "--port", str(self.port), "--workers", "1"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=self.root)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited: {(self.root / 'server.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(self.uri + "/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.5)
        raise RuntimeError(f"mlflow server not up after {timeout} s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        self.proc = None


@pytest.fixture
def server(tmp_path):
    s = Server(tmp_path / "mlflow")
    s.start()
    yield s
    s.stop()


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ZOO_", "MLFLOW_"))}
    return {**env, **extra}


def _suite(tmp_path: Path, report: str, *args, env=None, timeout=1800) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-P", "-m", "pytest", "benchmarks/", "-p", "no:cacheprovider", "--benchmark-only",
           "--zoo-profile", "smoke", "--zoo-models", MODEL, "--report-dir", str(tmp_path / report),
           "--latency-target-s", "0.05", "--latency-warmup", "1", "--float-baselines", "none",
           "--peak-memory", "off", *args]
    return subprocess.run(cmd, cwd=ROOT, env=_env(**(env or {})), capture_output=True, text=True, timeout=timeout)


def _bench(*args, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-P", "-m", "compression_bench.benchmarks", *map(str, args)], cwd=ROOT,
                          env=_env(**(env or {})), capture_output=True, text=True, timeout=600)


def _sessions(uri: str, experiment: str) -> dict[str, int]:
    """session id -> number of child runs, read through MLflow's client."""
    from compression_bench.benchmarks.reporting import tracking
    t = tracking.Tracker(uri, experiment)
    exp = t.client.get_experiment_by_name(experiment)
    if exp is None:
        return {}
    runs = t.client.search_runs([exp.experiment_id], filter_string=f"tags.`{tracking.KIND_TAG}` = 'session'")
    return {r.data.tags[tracking.SESSION_TAG]: len(t._children(exp.experiment_id, r.info.run_id)) for r in runs}


def test_two_machines_log_to_one_server_and_read_back_as_one_table(server, smoke_cache_copy, tmp_path):
    cache = smoke_cache_copy
    common = ["--compression-methods", "original,static_int8", "--mlflow-uri", server.uri,
              "--mlflow-experiment", "fleet"]
    keys = []
    for report, env in (("a", {}), ("b", OTHER_MACHINE)):
        r = _suite(tmp_path, report, *common, env={"ZOO_CACHE": str(cache), **env})
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        assert "logged to MLflow: " + server.uri in r.stdout
        keys.append(json.loads((tmp_path / report / "results.json").read_text())["header"]["Machine key"])
    assert keys[0] != keys[1] and keys[1].startswith("x86-baseline-")
    assert sorted(_sessions(server.uri, "fleet").values()) == [2, 2]
    r = _bench("machines", "--model", MODEL, "--mlflow-uri", server.uri, "--mlflow-experiment", "fleet",
               "--markdown", tmp_path / "machines.md")
    assert r.returncode == 0, r.stderr
    print(r.stdout)
    header = next(line for line in r.stdout.splitlines() if line.startswith("method"))
    assert keys[0] in header and keys[1] in header
    row = next(line for line in r.stdout.splitlines() if line.startswith("static_int8"))
    assert row.count("x (") == 2  # a speedup with its interval in each machine's column
    r = _bench("compare", f"mlflow:machine={keys[0]}", f"mlflow:machine={keys[1]}", "--mlflow-uri", server.uri,
               "--mlflow-experiment", "fleet")
    assert r.returncode == 0, r.stderr
    assert "machine" in r.stdout.lower() and keys[1] in r.stdout


KILLER = '''
import os, signal
_done = []
def pytest_runtest_call(item):
    if not _done:
        _done.append(1)
        os.killpg(int(os.environ["KILL_PGID"]), signal.SIGKILL)
'''


def test_a_server_killed_mid_run_loses_nothing(server, smoke_cache_copy, tmp_path):
    """The server dies during the first test: the session still writes its files, says what was not
    logged with the command that retries it, and exits 7; that command logs everything once the server
    is back."""
    cache = smoke_cache_copy
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "killer.py").write_text(KILLER)
    r = _suite(tmp_path, "report", "--compression-methods", "original,static_int8", "--mlflow-uri", server.uri,
               "--mlflow-experiment", "killed", "-p", "killer",
               env={"ZOO_CACHE": str(cache), "PYTHONPATH": str(tmp_path / "plugins"),
                    "KILL_PGID": str(server.proc.pid)})
    assert r.returncode == 7, r.stdout[-3000:] + r.stderr[-3000:]
    results = tmp_path / "report" / "results.json"
    assert "not logged to MLflow" in r.stdout and f"compression-bench log {results}" in r.stdout
    assert len(json.loads(results.read_text())["results"]) == 2
    server.stop()
    server.start()
    before = _sessions(server.uri, "killed")
    r = _bench("log", results, "--mlflow-uri", server.uri, "--mlflow-experiment", "killed")
    assert r.returncode == 0, r.stderr
    after = _sessions(server.uri, "killed")
    print(f"records logged before: {sum(before.values())}, after: {sum(after.values())}")
    assert sum(before.values()) == 0 and list(after.values()) == [2]


def test_exported_artifacts_make_a_warm_run_elsewhere_build_nothing(tmp_path):
    """Export a prepared cache, import it into an empty one: a run there builds nothing (its
    builds.log stays empty). Imported on another machine, the instruction-set-specific ONNX Runtime
    artifacts are left out and rebuilt there, and nothing else is."""
    methods = ["--compression-methods", "original,static_int8", "--runtimes", "eager,onnxruntime"]
    r = _suite(tmp_path, "prepare", *methods, env={"ZOO_CACHE": str(tmp_path / "prepared")})
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    r = _bench("export", tmp_path / "prepared.tar.gz", "--cache", tmp_path / "prepared")
    assert r.returncode == 0, r.stderr
    print(r.stdout)
    for name, env in (("same", {}), ("other", OTHER_MACHINE)):
        cache = tmp_path / f"{name}-cache"
        r = _bench("import", tmp_path / "prepared.tar.gz", "--cache", cache, env=env)
        assert r.returncode == 0, r.stderr
        print(r.stdout)
        r = _suite(tmp_path, name, *methods, env={"ZOO_CACHE": str(cache), **env})
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        log = cache / "builds.log"
        built = [line.split("\t")[2] for line in log.read_text().splitlines()] if log.exists() else []
        print(name, "built:", built)
        if name == "same":
            assert built == []
        else:
            assert built and all(b.startswith(("runtime/", "runtime-metrics/")) and "onnxruntime" in b for b in built)
