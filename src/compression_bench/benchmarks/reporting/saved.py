"""Loading saved runs for comparison: pytest-benchmark JSON files and the suite's results.json. No pytest.

A run is either a pytest-benchmark saved run (``--benchmark-save``/``--benchmark-autosave``/
``--benchmark-json``: per benchmark ``name``, ``stats`` in seconds and the suite's figures in
``extra_info``) or the ``results.json`` the suite writes next to ``report.md``. Either way each entry
becomes a record, the dict form of :class:`benchmarks.results.schema.Record`; entries saved by older versions
of the suite, which lack newer fields, get those fields' defaults. A run can be compared when every
entry has the schema's ``REQUIRED`` fields, its ``NUMERIC`` ones as numbers, names for its model, method
and runtime and whole numbers for its batch size, threads and seed (what pairs it with the other run's).
A file that is not so (edited by hand, cut short, written by another tool) is a :class:`CompareError`
naming the file, the entry and the field, never a traceback from deep in the comparison.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from compression_bench.benchmarks.results import document, schema
from compression_bench.benchmarks.results.records import number as _num

# figures a saved benchmark must carry in extra_info to be compared (older saved runs lack them)
REQUIRED, NUMERIC = document.REQUIRED, document.NUMERIC  # what an entry needs to be compared
DEFAULT_STORAGE = ".benchmarks"


#: a run cannot be compared; the message is one sentence that names the file and the fix
CompareError = document.ResultsError

_BS = re.compile(r"-bs(\d+)(?:-t\d+)?\]$")


def record_from_benchmark(bench: Mapping, source: str) -> dict:
    """One record (the dict form of :class:`benchmarks.results.schema.Record`) from one saved pytest-benchmark entry."""
    if not isinstance(bench, Mapping):
        raise CompareError(f"{source} has a malformed benchmark entry (expected an object, got "
                           f"{type(bench).__name__}).")
    name = bench.get("name") or bench.get("fullname") or "?"
    extra = bench.get("extra_info")
    extra = extra if isinstance(extra, Mapping) else {}
    missing = [k for k in REQUIRED if k not in extra]
    if missing:
        raise CompareError(f"{source} was saved in an older format: benchmark {name!r} lacks "
                           f"{', '.join(missing)} in extra_info, so save a new run with the current suite "
                           f"(pytest benchmarks/ --benchmark-only --benchmark-save=NAME).")
    bad = [k for k in NUMERIC if _num(extra[k]) is None]
    if bad:
        raise CompareError(f"{source} has non-numeric {', '.join(bad)} for benchmark {name!r}.")
    rec = dict(extra)
    rec["name"] = str(name).rsplit("::", 1)[-1]
    if rec.get("batch_size") is None:
        m = _BS.search(rec["name"])
        rec["batch_size"] = int(m.group(1)) if m else None
    stats = bench.get("stats")
    median = _num(stats.get("median")) if isinstance(stats, Mapping) else None
    rec["latency_median_ms"] = None if median is None else median * 1e3
    rec.setdefault("label", rec["method"])
    problem = document.malformed(rec)
    if problem:
        raise CompareError(f"{source} is a saved run whose benchmark {name!r} {problem}.")
    return schema.Record.from_dict(rec).to_dict()


def records_from_run(data, source: str) -> list[dict]:
    """Records from a parsed saved run (pytest-benchmark JSON or the suite's results.json)."""
    if isinstance(data, Mapping) and isinstance(data.get("benchmarks"), list):
        if not data["benchmarks"]:
            raise CompareError(f"{source} holds no benchmarks (was the run made with --benchmark-disable?).")
        return [record_from_benchmark(b, source) for b in data["benchmarks"]]
    if isinstance(data, Mapping) and isinstance(data.get("results"), list) and "format" in data:
        return document.records_from_document(data, source)
    raise CompareError(f"{source} is not a saved benchmark run of this suite (it has no 'benchmarks' list "
                       f"as pytest-benchmark writes, nor a 'results' list as results.json has).")


@dataclass
class Run:
    """A loaded run: where it came from, what it says about itself, and its records."""
    name: str
    path: str
    records: list[dict]
    profile: str | None = None
    saved: str | None = None
    commit: str | None = None
    machine: str | None = None   # the machine key (benchmarks.measurement.machine), None for runs saved before it

    def describe(self) -> str:
        bits = [f"saved {self.saved}" if self.saved else None,
                f"profile {self.profile}" if self.profile else None,
                f"commit {self.commit}" if self.commit else None,
                f"machine {self.machine}" if self.machine else None]
        bits = [b for b in bits if b]
        return f"{self.name} ({self.path}" + (f"; {', '.join(bits)})" if bits else ")")


def _text(v) -> str | None:
    """A run's self-description (profile, date, commit, machine key) as text; None for what is no text."""
    return str(v) if isinstance(v, (str, int, float)) and not isinstance(v, bool) and str(v) else None


def run_from_data(data, path: str, name: str | None = None) -> Run:
    records = records_from_run(data, path)
    name = name or Path(path).stem
    if "benchmarks" in data:
        info = data.get("machine_info") if isinstance(data.get("machine_info"), Mapping) else {}
        bench_info = info.get("compression_bench") if isinstance(info.get("compression_bench"), Mapping) else {}
        commit = data.get("commit_info") if isinstance(data.get("commit_info"), Mapping) else {}
        cid = (_text(commit.get("id")) or "")[:7] or None
        if cid and commit.get("dirty"):
            cid += " (uncommitted changes)"
        machine = bench_info.get("machine") if isinstance(bench_info.get("machine"), Mapping) else {}
        return Run(name, path, records, profile=_text(bench_info.get("profile")) or _text(records[0].get("profile")),
                   saved=_text(data.get("datetime")), commit=cid, machine=_text(machine.get("key")))
    header = data.get("header") if isinstance(data.get("header"), Mapping) else {}
    low = {str(k).lower(): v for k, v in header.items()}
    return Run(name, path, records, profile=_text(low.get("profile")) or _text(records[0].get("profile")),
               saved=_text(low.get("date")), commit=_text(low.get("git commit")), machine=_text(low.get("machine key")))


def load_run(path: str | Path, name: str | None = None, source: str | None = None) -> Run:
    """The run saved in ``path``; ``source`` is how messages name it (default: the path), e.g. the
    MLflow run a downloaded file came from."""
    p = Path(path)
    source = source or str(p)
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise CompareError(f"{source} is not a JSON file (it is not even UTF-8 text).") from None
    except OSError as err:
        raise CompareError(f"cannot read {source} ({err.strerror or err}).") from None
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as err:
        where = (f"{err.msg} at line {err.lineno}, column {err.colno}" if isinstance(err, json.JSONDecodeError)
                 else "nested too deeply")
        raise CompareError(f"{source} is not a JSON file ({where}).") from None
    run = run_from_data(data, source, name)
    run.path = str(p)
    return run


def resolve(ref: str, storage: str | Path = DEFAULT_STORAGE) -> Path:
    """A path as given, or a pytest-benchmark run id (``0001``, ``0001_base``, ``<machine>/0001``)
    looked up in the storage folder the way ``--benchmark-compare`` does."""
    p = Path(ref)
    if p.is_file():
        return p
    store = Path(storage)
    if not store.is_dir():
        raise CompareError(f"no saved run {ref!r}: it is not a file, and there is no benchmark storage folder "
                           f"{str(store)!r} to look up a run id in (choose one with --storage).")
    stem = ref.rstrip("*")
    found: list[Path] = []
    if not stem.endswith(".json") and len(p.parts) <= 2:
        if len(p.parts) == 2:
            found = sorted(store.glob(f"{p.parts[0]}/{p.parts[1].rstrip('*')}*.json"))
        else:
            found = sorted(set(store.glob(f"*/{stem}*.json")) | set(store.glob(f"{stem}*.json")))
    if not found:
        raise CompareError(f"no saved run {ref!r}: it is not a file, and no run id in {str(store)!r} starts with it "
                           f"(list them with 'pytest-benchmark --storage {store} list').")
    if len(found) > 1:
        shown = ", ".join(str(f.relative_to(store)) for f in found[:5]) + (", ..." if len(found) > 5 else "")
        raise CompareError(f"run id {ref!r} is ambiguous in {str(store)!r} ({shown}); pass a longer id or a file path.")
    return found[0]


