"""Runs logged to MLflow and read back, and prepared artifacts moved between caches (fast tier).

MLflow runs here against a SQLite tracking store in the test's directory (no server: the same client
calls, in seconds); tests/test_fleet.py (e2e) does the same against a real tracking server on
127.0.0.1, with faults. Export and import run on small hand-made caches.
"""
from __future__ import annotations

import contextlib
import io
import json
import socket
import tarfile
import types
from pathlib import Path

import pytest
import torch

from compression_bench.benchmarks.reporting import tracking
from compression_bench.benchmarks import transfer
from compression_bench.zoo.cache import ArtifactCache, write_entry

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "data" / "example-results.json"


def _cli(*args) -> types.SimpleNamespace:
    from compression_bench.benchmarks.__main__ import main
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in args])
        except SystemExit as exit_:
            code = exit_.code
    return types.SimpleNamespace(returncode=code or 0, stdout=out.getvalue(), stderr=err.getvalue())


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends: nothing listens there


@pytest.fixture
def store(tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    monkeypatch.chdir(tmp_path)  # a SQLite store keeps artifacts under ./mlruns
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


def _example(header_changes=None, n=None) -> dict:
    data = json.loads(EXAMPLE.read_text())
    data["header"].update(header_changes or {})
    if n is not None:
        data["results"] = data["results"][:n]
    return data


# ---------------------------------------------------------------- MLflow

def test_a_failed_log_is_completed_by_logging_again_without_duplicates(store):
    """A session logged in part (the server failed mid-way) and then whole: one session run, each
    record once, and the results.json artifact is the whole one."""
    t = tracking.Tracker(store, "e1")
    part = t.log(_example({"Session id": "s1"}, n=5))
    assert (part.logged, part.already) == (5, 0)
    whole = t.log(_example({"Session id": "s1"}), [EXAMPLE])
    total = len(_example()["results"])
    assert whole.run_id == part.run_id and (whole.logged, whole.already) == (total - 5, 5)
    assert t.log(_example({"Session id": "s1"})).logged == 0
    exp = t.client.get_experiment_by_name("e1").experiment_id
    children = t._children(exp, part.run_id)
    assert len(children) == total
    assert len({c.data.tags[tracking.RECORD_TAG] for c in children}) == total
    static = next(c for c in children if c.data.params["model"] == "EnhancedLeNet5"
                  and c.data.params["method"] == "static_int8" and c.data.params["runtime"] == "eager")
    assert static.data.metrics["speedup_low"] < static.data.metrics["speedup"] < static.data.metrics["speedup_high"]
    assert "accuracy_low" in static.data.metrics and static.data.params["batch_size"] == "64"
    parent = t.client.get_run(part.run_id)
    assert parent.data.tags["machine_key"] == _example()["header"]["Machine key"]
    assert parent.data.tags["commit"] == _example()["header"]["Git commit"]
    back = json.loads(t.download_results(part.run_id, Path("dl")).read_text())
    assert len(back["results"]) == total


def test_machine_table_puts_each_machines_speedup_and_interval_in_its_column(store):
    """Two machines' sessions in one experiment, read back as one method-by-machine table."""
    t = tracking.Tracker(store, "e2")
    a = _example({"Session id": "a"})
    b = _example({"Session id": "b", "Machine key": "x86-avx2-00000000", "CPU": "another CPU"})
    for r in b["results"]:
        if r["speedup"] is not None:
            r.update(speedup=r["speedup"] / 2, speedup_low=r["speedup_low"] / 2, speedup_high=r["speedup_high"] / 2)
    t.log(a)
    t.log(b)
    assert set(t.sessions_by_machine()) == {a["header"]["Machine key"], "x86-avx2-00000000"}
    r = _cli("machines", "--model", "EnhancedLeNet5", "--mlflow-uri", store, "--mlflow-experiment", "e2",
             "--markdown", "m.md")
    assert r.returncode == 0, r.stderr
    static = next(x for x in a["results"] if x["model"] == "EnhancedLeNet5" and x["method"] == "static_int8"
                  and x["runtime"] == "eager")
    line = next(x for x in r.stdout.splitlines() if x.startswith("static_int8") and " eager " in x)
    assert f"{static['speedup']:.2f}x ({static['speedup_low']:.2f}-{static['speedup_high']:.2f})" in line
    assert f"{static['speedup'] / 2:.2f}x" in line
    assert "another CPU" in r.stdout and "x86-avx2-00000000" in Path("m.md").read_text()
    # the same two sessions compared by machine key: the comparison says the machines differ
    r = _cli("compare", f"mlflow:machine={a['header']['Machine key']}", "mlflow:machine=x86-avx2-00000000",
             "--mlflow-uri", store, "--mlflow-experiment", "e2")
    assert r.returncode == 0, r.stderr
    assert "x86-avx2-00000000" in r.stdout and "machine" in r.stdout.lower()
    assert "0.50x" in r.stdout  # every speedup halved, B/A


def test_the_log_command_logs_a_saved_results_file_and_the_files_beside_it(store, tmp_path):
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "results.json").write_text(json.dumps(_example({"Session id": "cli"})))
    (reports / "report.md").write_text("# report\n")
    r = _cli("log", reports / "results.json", "--mlflow-uri", store, "--mlflow-experiment", "e3")
    assert r.returncode == 0, r.stderr
    assert f"{len(_example()['results'])} record(s)" in r.stdout and "2 file(s)" in r.stdout
    r = _cli("log", reports / "results.json", "--mlflow-uri", store, "--mlflow-experiment", "e3")
    assert "0 record(s)" in r.stdout and "were already there" in r.stdout
    bad = _cli("log", reports / "report.md", "--mlflow-uri", store)
    assert bad.returncode == 2 and "results.json" in bad.stderr and "Traceback" not in bad.stderr
    none = _cli("log", reports / "results.json")
    assert none.returncode == 2 and "--mlflow-uri" in none.stderr


def test_an_unreachable_tracking_server_stops_the_session_before_anything_trains(suite_inprocess, tmp_path):
    pytest.importorskip("mlflow")
    uri = f"http://127.0.0.1:{_closed_port()}"
    r = suite_inprocess("--zoo-models", "EnhancedLeNet5", "--benchmark-only", "--mlflow-uri", uri)
    assert r.returncode == 4
    assert f"the MLflow tracking server at {uri} cannot be reached" in r.stdout + r.stderr
    assert not (tmp_path / "cache" / "trained").exists()
    # the environment's MLFLOW_TRACKING_URI is honoured the same way
    r = suite_inprocess("--zoo-models", "EnhancedLeNet5", "--benchmark-only", env={"MLFLOW_TRACKING_URI": uri})
    assert r.returncode == 4 and "cannot be reached" in r.stdout + r.stderr


def test_a_session_logs_one_run_with_a_child_run_per_record(tmp_path, suite_inprocess, smoke_cache_copy, store,
                                                            monkeypatch):
    monkeypatch.chdir(suite_inprocess.path)  # where pytester collects (the store fixture moved elsewhere)
    (suite_inprocess.path / "test_bench.py").write_text(
        "from compression_bench.benchmarks.suite import test_variant  # noqa: F401\n")
    r = suite_inprocess("--zoo-models", "EnhancedLeNet5", "--compression-methods", "original,static_int8",
                        "--benchmark-only", "--speedup-precision", "0.5", "--mlflow-uri", store,
                        "--mlflow-experiment", "session")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "logged to MLflow" in r.stdout and "2 record(s)" in r.stdout
    results = json.loads((tmp_path / "report" / "results.json").read_text())
    t = tracking.Tracker(store, "session")
    run = t.session_run(results["header"]["Session id"])
    assert run is not None and run.data.tags["machine_key"] == results["header"]["Machine key"]
    files = {a.path for a in t.client.list_artifacts(run.info.run_id)}
    assert {"results.json", "report.md", "results.csv"} <= files
    children = t._children(run.info.experiment_id, run.info.run_id)
    int8 = next(c for c in children if c.data.params["method"] == "static_int8")
    row = next(x for x in results["results"] if x["method"] == "static_int8")
    assert int8.data.metrics["speedup"] == pytest.approx(row["speedup"])
    assert int8.data.metrics["accuracy"] == pytest.approx(row["accuracy"])


# ---------------------------------------------------------------- credentials in the URI

@pytest.mark.parametrize("uri, shown", [
    ("https://user:s3cret@mlflow.example.com", "https://user:***@mlflow.example.com"),
    ("https://user:s3cret@mlflow.example.com:8443/prefix/", "https://user:***@mlflow.example.com:8443/prefix/"),
    ("https://s3cret@mlflow.example.com", "https://***@mlflow.example.com"),            # a token alone
    ("https://:s3cret@mlflow.example.com", "https://:***@mlflow.example.com"),
    ("postgresql://mlflow:s3cret@db/mlflow", "postgresql://mlflow:***@db/mlflow"),
    ("https://mlflow.example.com:5000", "https://mlflow.example.com:5000"),             # nothing secret
    ("sqlite:///tmp/mlflow.db", "sqlite:///tmp/mlflow.db"),
    ("file:///srv/mlruns@2026", "file:///srv/mlruns@2026"),
    ("https://mlflow.example.com/?token=s3cret&experiment=1", "https://mlflow.example.com/?token=***&experiment=1"),
    ("https://mlflow.example.com/api?x=1&access_token=s3cret", "https://mlflow.example.com/api?x=1&access_token=***"),
    ("the server at https://u:s3cret@h:5000 cannot be reached", "the server at https://u:***@h:5000 cannot be reached"),
])
def test_the_secret_part_of_a_tracking_uri_is_redacted(uri, shown):
    assert tracking.redact(uri) == shown
    assert "s3cret" not in tracking.redact(uri)


def test_an_unreachable_server_with_credentials_is_named_without_its_secret():
    pytest.importorskip("mlflow")
    uri = f"http://user:s3cret@127.0.0.1:{_closed_port()}"
    t = tracking.Tracker(uri)
    with pytest.raises(tracking.TrackingError) as err:
        t.check(timeout=2)
    assert "s3cret" not in str(err.value) and "user:***@127.0.0.1" in str(err.value)
    assert "Connection refused" in str(err.value) or "refused" in str(err.value).lower()  # not a DNS error
    assert t.uri == uri  # the real URI is what connects


def test_the_retry_hint_and_the_logged_notice_name_the_server_without_its_secret(tmp_path):
    """A server that fails mid-session: the session end says how to retry, naming the URI masked."""
    from compression_bench.benchmarks.reporting import session_end

    class Failing:
        uri, experiment = "https://user:s3cret@mlflow.example.com/?access_token=t0ken", "e"

        def log(self, *args, **kwargs):
            raise tracking.TrackingError("logging to MLflow failed (ConnectionError: HTTPSConnectionPool(host="
                                         "'mlflow.example.com', port=443)).")
    out = session_end.Outcome(paths={"json": tmp_path / "results.json"})
    session = types.SimpleNamespace(say=print)
    notices: list[str] = []
    session_end._track(session, Failing(), [], {}, [], out, notices)
    (line,) = out.unwritten
    assert "Retry: compression-bench log" in line and "--mlflow-uri 'https://user:***@mlflow.example.com/" in line
    assert "s3cret" not in line and "t0ken" not in line
    logged = tracking.Logged("r1", "e", "3", logged=2)
    assert logged.sentence(Failing.uri).startswith("logged to MLflow: https://user:***@mlflow.example.com/")
    assert "s3cret" not in logged.sentence(Failing.uri)


def test_the_health_check_sends_the_uris_credentials_as_basic_auth():
    """``https://user:token@host``: urllib reads ``user:token@host`` as the host name; the check must
    send the credentials as MLflow's client does (basic auth) and reach the server."""
    pytest.importorskip("mlflow")
    import base64
    import http.server
    import threading
    seen = []

    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            seen.append(self.headers.get("Authorization"))
            ok = self.headers.get("Authorization") == "Basic " + base64.b64encode(b"user:s3cret").decode()
            self.send_response(200 if ok else 401)
            self.end_headers()

        def log_message(self, *args):
            pass
    server = http.server.HTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        tracking.Tracker(f"http://user:s3cret@127.0.0.1:{server.server_port}").check(timeout=5)
        with pytest.raises(tracking.TrackingError) as err:
            tracking.Tracker(f"http://user:wrong@127.0.0.1:{server.server_port}").check(timeout=5)
        assert "HTTP 401" in str(err.value) and "wrong" not in str(err.value)
    finally:
        server.shutdown()
        server.server_close()
    assert seen[0].startswith("Basic ")


def test_a_session_with_an_unreachable_server_never_prints_the_uris_secret(suite_inprocess, tmp_path):
    pytest.importorskip("mlflow")
    uri = f"http://user:s3cret@127.0.0.1:{_closed_port()}/?token=t0ken"
    r = suite_inprocess("--zoo-models", "EnhancedLeNet5", "--benchmark-only", "--mlflow-uri", uri)
    assert r.returncode == 4 and "cannot be reached" in r.stdout + r.stderr
    assert "s3cret" not in r.stdout + r.stderr and "t0ken" not in r.stdout + r.stderr


# ---------------------------------------------------------------- export and import

def _entry(root: Path, kind: str, name: str, parts: dict) -> Path:
    path = root / kind / f"{name}-{abs(hash(json.dumps(parts, sort_keys=True))) % 10**8:08d}.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_entry(path, {"format": 2, "key": "k", "parts": parts, "weights": torch.arange(4.0)})
    return path


@pytest.fixture
def cache(tmp_path):
    root = tmp_path / "cache"
    _entry(root, "trained", "M", {"kind": "trained"})
    _entry(root, "variants", "M-static_int8", {"kind": "variant"})
    _entry(root, "runtime", "M-original-inductor", {"versions": {"torch": "x", "cpu_capability": "AVX512"}})
    _entry(root, "trained", "Other", {"kind": "trained"})
    return root


MACHINE = {"key": "x86-avx512-vnni-11111111"}


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*.pt")} if root.exists() else {}


def test_export_then_import_copies_every_entry_byte_for_byte(cache, tmp_path):
    done = transfer.export_cache(cache, tmp_path / "a.tar.gz", machine=MACHINE)
    assert sum(done.entries.values()) == 4
    got = transfer.import_archive(tmp_path / "a.tar.gz", tmp_path / "new", machine=MACHINE, trust_native_code=True)
    assert sum(got.entries.values()) == 4 and not got.left_out
    assert _files(tmp_path / "new") == _files(cache)
    again = transfer.import_archive(tmp_path / "a.tar.gz", tmp_path / "new", machine=MACHINE, trust_native_code=True)
    assert again.present == 4 and not again.entries
    # --models: only that model's entries
    transfer.export_cache(cache, tmp_path / "m.tar", machine=MACHINE, models=["M"])
    with tarfile.open(tmp_path / "m.tar") as tar:
        assert sorted(n.split("/")[-1].split("-")[0] for n in tar.getnames() if n != transfer.MANIFEST) == ["M"] * 3


def test_entries_built_for_another_instruction_set_are_left_out_on_another_machine(cache, tmp_path):
    transfer.export_cache(cache, tmp_path / "a.tar", machine=MACHINE)
    got = transfer.import_archive(tmp_path / "a.tar", tmp_path / "new", machine={"key": "x86-avx2-22222222"})
    assert sum(got.entries.values()) == 3
    assert len(got.left_out) == 1 and "runtime/M-original-inductor" in got.left_out[0]
    assert "x86-avx2-22222222" in got.left_out[0]
    assert not (tmp_path / "new" / "runtime").exists()


def _rewrite(archive: Path, out: Path, change) -> None:
    with tarfile.open(archive) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]
    with tarfile.open(out, "w") as tar:
        for m, data in members:
            name, data = change(m.name, data)
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


@pytest.mark.parametrize("damage, message", [
    (lambda n, d: (n, d[:-1] + bytes([d[-1] ^ 1])) if n.startswith("variants/") else (n, d), "checksum"),
    (lambda n, d: ("../escape.pt", d) if n.startswith("variants/") else (n, d), "not a plain file inside"),
    (lambda n, d: (n, b"{}") if n == transfer.MANIFEST else (n, d), "another format"),
    (lambda n, d: ("trained/extra.pt", d) if n.startswith("variants/") else (n, d), "does not match its manifest"),
])
def test_a_damaged_archive_is_rejected_with_one_sentence_and_nothing_added(cache, tmp_path, damage, message):
    transfer.export_cache(cache, tmp_path / "a.tar", machine=MACHINE)
    _rewrite(tmp_path / "a.tar", tmp_path / "bad.tar", damage)
    r = _cli("import", tmp_path / "bad.tar", "--cache", tmp_path / "new")
    assert r.returncode == 2 and message in r.stderr and "nothing was imported" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert _files(tmp_path / "new") == {}


def test_a_truncated_archive_is_rejected(cache, tmp_path):
    transfer.export_cache(cache, tmp_path / "a.tar", machine=MACHINE)
    data = (tmp_path / "a.tar").read_bytes()
    (tmp_path / "cut.tar").write_bytes(data[: len(data) // 2])
    r = _cli("import", tmp_path / "cut.tar", "--cache", tmp_path / "new")
    assert r.returncode == 2 and "nothing was imported" in r.stderr
    assert _files(tmp_path / "new") == {}


def test_an_imported_entry_is_found_by_the_cache_under_its_key(tmp_path):
    """What import writes is what ArtifactCache.get_or_build looks up: nothing is rebuilt."""
    src = ArtifactCache(tmp_path / "src")
    src.get_or_build("variants", "M-x", {"a": 1}, lambda: {"w": torch.ones(2)})
    transfer.export_cache(src.root, tmp_path / "a.tar", machine=MACHINE)
    transfer.import_archive(tmp_path / "a.tar", tmp_path / "dst", machine=MACHINE)
    dst = ArtifactCache(tmp_path / "dst")

    def build():
        raise AssertionError("rebuilt")
    blob, built = dst.get_or_build("variants", "M-x", {"a": 1}, build)
    assert not built and torch.equal(blob["w"], torch.ones(2))


def _native_cache(root: Path) -> Path:
    """A cache with a trained model, an ONNX Runtime artifact and two compiled Inductor packages (one
    whose key parts claim another runtime: the file's name is what decides which runtime loads it)."""
    _entry(root, "trained", "M", {"kind": "trained"})
    _entry(root, "runtime", "M-original-onnxruntime", {"kind": "runtime", "runtime": "onnxruntime"})
    _entry(root, "runtime", "M-original-inductor-bs8", {"kind": "runtime", "runtime": "inductor",
                                                        "versions": {"cpu_capability": "AVX512"}})
    _entry(root, "runtime", "M-static_int8-inductor", {"kind": "runtime", "runtime": "onnxruntime"})
    return root


def test_compiled_packages_are_imported_only_with_trust_native_code(tmp_path):
    """An Inductor package is a shared library that runs when the suite loads it. The archive's
    manifest and machine key prove nothing (the key is a hash of facts every report prints), so an
    archive that carries this machine's key still brings no package unless --trust-native-code asks."""
    from compression_bench.benchmarks.measurement import machine
    cache = _native_cache(tmp_path / "cache")
    transfer.export_cache(cache, tmp_path / "a.tar", machine=machine.identify())  # the importing machine's key
    r = _cli("import", tmp_path / "a.tar", "--cache", tmp_path / "new")
    assert r.returncode == 0, r.stderr
    assert sorted(_files(tmp_path / "new")) == ["runtime/" + p.name for p in cache.glob("runtime/*onnxruntime*")] \
        + ["trained/" + p.name for p in cache.glob("trained/*")]
    assert "2 compiled Inductor packages" in r.stdout and "--trust-native-code" in r.stdout
    r = _cli("import", tmp_path / "a.tar", "--cache", tmp_path / "new", "--trust-native-code")
    assert r.returncode == 0, r.stderr
    assert _files(tmp_path / "new") == _files(cache)
    assert "--trust-native-code" in _cli("import", "--help").stdout


def test_an_unreadable_destination_entry_stops_import_with_one_sentence_and_status_7(cache, tmp_path, monkeypatch):
    import errno
    transfer.export_cache(cache, tmp_path / "a.tar", machine=MACHINE)
    transfer.import_archive(tmp_path / "a.tar", tmp_path / "new", machine=MACHINE)
    (dest,) = (tmp_path / "new" / "variants").glob("*.pt")
    real = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda self: (_ for _ in ()).throw(PermissionError(
        errno.EACCES, "Permission denied")) if self == dest else real(self))
    r = _cli("import", tmp_path / "a.tar", "--cache", tmp_path / "new")
    assert r.returncode == 7, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and str(dest) in r.stderr and "Permission denied" in r.stderr
    assert "Traceback" not in r.stderr and "permissions" in r.stderr


def test_an_unreadable_cache_entry_stops_export_with_one_sentence_and_status_7(cache, tmp_path, monkeypatch):
    import errno
    (entry,) = (cache / "variants").glob("*.pt")
    real = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda self: (_ for _ in ()).throw(OSError(
        errno.EIO, "Input/output error")) if self == entry else real(self))
    r = _cli("export", tmp_path / "a.tar", "--cache", cache)
    assert r.returncode == 7, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and str(entry) in r.stderr and "Input/output error" in r.stderr
    assert "cannot write" not in r.stderr and not (tmp_path / "a.tar").exists()
