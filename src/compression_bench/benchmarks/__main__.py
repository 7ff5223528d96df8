"""The ``compression-bench`` command: ``compare``, ``log`` and ``machines``.

``compare A B``: accuracy, size, params and latency of two saved runs. A and B are paths to
pytest-benchmark JSON files (``--benchmark-save``, ``--benchmark-autosave``, ``--benchmark-json``) or
to the suite's ``results.json``, pytest-benchmark run ids such as ``0001`` looked up in
``.benchmarks/`` (or ``--storage DIR``), or MLflow session runs: ``mlflow:<run id>`` or
``mlflow:machine=<key>[,commit=<sha>]`` (with ``--mlflow-uri`` or ``$MLFLOW_TRACKING_URI``).
Exit status: 0 when compared, 1 when ``--compare-fail-speedup`` found a significant speedup drop, 2 when
a run cannot be read or compared (one-sentence error).

``log RESULTS``: log a saved ``results.json`` (and the report files beside it) to MLflow, adding only
what the session's run does not have yet. Exit 0 when logged, 2 when it cannot be.

``machines --model M``: the latest session of every machine in the MLflow experiment, as one
method-by-machine table of ``M``'s speedups with their intervals.

``export ARCHIVE`` / ``import ARCHIVE``: the cache's entries written to one archive, and verified and
added to another machine's cache (:mod:`benchmarks.transfer`); compiled Inductor packages are
imported only with ``--trust-native-code``. Exit 0 when done, 2 when the archive or cache cannot be
used (nothing added), 7 when a file of the cache or the archive cannot be read or written (one
sentence naming it).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from tabulate import tabulate

from compression_bench.benchmarks.reporting import compare, machines, saved, tracking
from compression_bench.benchmarks import transfer
from compression_bench.benchmarks.errors import EXIT_FAILED, EXIT_FAULT, EXIT_MALFORMED, EXIT_OK
from compression_bench.benchmarks.settings import options


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="compression-bench",
                                description="Tools for the compression benchmark suite's saved runs.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    c = sub.add_parser("compare", help="compare two saved runs metric by metric, one table per model",
                       description="Compare two saved runs metric by metric: accuracy A → B (Δ points), size, "
                                   "params and median latency A → B (ratios B/A), one table per model.")
    c.add_argument("a", metavar="A", help="the older run: a saved-run JSON file, a run id such as 0001, or "
                                          "mlflow:<run id> / mlflow:machine=<key>[,commit=<sha>]")
    c.add_argument("b", metavar="B", help="the newer run, in the same forms")
    c.add_argument("--markdown", metavar="OUT", help="also write the comparison as Markdown to this file")
    c.add_argument("--storage", metavar="DIR", default=saved.DEFAULT_STORAGE,
                   help=f"pytest-benchmark storage folder for run ids (default: {saved.DEFAULT_STORAGE})")
    c.add_argument("--compare-fail-speedup", metavar="DROP", default=None,
                   help="exit 1 when a variant's speedup fell from A to B significantly (its 95%% interval "
                        "excludes no change) and by more than DROP, e.g. 10%% or 0.1")
    _mlflow_args(c)
    lg = sub.add_parser("log", help="log a saved results.json (and the report files beside it) to MLflow",
                        description="Log a session's saved results to an MLflow tracking server: one run, a "
                                    "child run per record, the files beside results.json as artifacts. Only "
                                    "what the session's run does not have yet is logged, so this completes a "
                                    "session whose logging failed mid-run.")
    lg.add_argument("results", metavar="RESULTS", help="the session's results.json, e.g. reports/results.json")
    _mlflow_args(lg)
    m = sub.add_parser("machines", help="one model's speedups on every machine logged to MLflow",
                       description="For one model, a method-by-machine table of speedups (with their 95%% "
                                   "intervals) from the latest session each machine logged to the experiment.")
    m.add_argument("--model", required=True, help="the model, e.g. ResNet50Custom")
    m.add_argument("--markdown", metavar="OUT", help="also write the table as Markdown to this file")
    _mlflow_args(m)
    ex = sub.add_parser("export", help="write the cache's entries to one archive, to time on another machine",
                        description="Write the cache's entries (trained models, variants, metrics, runtime "
                                    "artifacts, peak-memory measurements) with their checksums to one tar "
                                    "archive (.tar.gz: compressed).")
    ex.add_argument("archive", metavar="ARCHIVE", help="the archive to write, e.g. prepared.tar")
    ex.add_argument("--models", default=None, help="comma-separated models whose entries to export (default: all)")
    ex.add_argument("--cache", default=None, help="the cache (default: $ZOO_CACHE or ~/.cache/compression-bench)")
    im = sub.add_parser("import", help="verify an exported archive and add its entries to this machine's cache",
                        description="Verify every entry of an archive written by 'compression-bench export' and "
                                    "add them to the cache; nothing is added when one check fails. Entries built "
                                    "for another machine's instruction set are left out (rebuilt here). The "
                                    "checks prove the archive intact, not who made it, so compiled Inductor "
                                    "packages (native code, run when loaded) are skipped and rebuilt here unless "
                                    "--trust-native-code is given. Exit 7 when a file cannot be read or written.")
    im.add_argument("archive", metavar="ARCHIVE", help="an archive written by compression-bench export")
    im.add_argument("--cache", default=None, help="the cache (default: $ZOO_CACHE or ~/.cache/compression-bench)")
    im.add_argument("--trust-native-code", action="store_true",
                    help="also import the compiled Inductor packages (shared libraries that run in the suite's "
                         "process when loaded), which the archive cannot prove who built: only when you trust "
                         "whoever made the archive")
    return p


def _mlflow_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--mlflow-uri", metavar="URI", default=None,
                   help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI)")
    p.add_argument("--mlflow-experiment", metavar="NAME", default=None,
                   help=f"MLflow experiment (default: {tracking.DEFAULT_EXPERIMENT})")


def _tracker(args, needed_for: str) -> tracking.Tracker:
    uri = options.tracking_uri(args.mlflow_uri)
    if not uri:
        raise tracking.TrackingError(f"{needed_for} needs an MLflow tracking server: pass --mlflow-uri or set "
                                     f"MLFLOW_TRACKING_URI.")
    t = tracking.Tracker(uri, args.mlflow_experiment)
    t.check()
    return t


def _resolve(ref: str, args, tmp: str, tracker_box: list) -> saved.Run:
    """A saved run: a path or run id (:func:`saved.resolve`), or an MLflow run's results.json, which
    messages name by its run (the file is a temporary download)."""
    if not ref.startswith("mlflow:"):
        storage = args.storage[len("file://"):] if args.storage.startswith("file://") else args.storage
        return saved.load_run(saved.resolve(ref, storage))
    if not tracker_box:
        tracker_box.append(_tracker(args, "an mlflow: run"))
    t = tracker_box[0]
    run_id = t.find_session(ref[len("mlflow:"):])
    run = saved.load_run(t.download_results(run_id, Path(tmp) / run_id), name=ref,
                         source=f"the results.json of MLflow run {run_id} ({ref})")
    run.path = f"MLflow run {run_id} at {t.shown}"
    return run


def _compare(args) -> int:
    runs, box = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for ref in (args.a, args.b):
            runs.append(_resolve(ref, args, tmp, box))
    a, b = runs
    if a.name == b.name:  # two runs saved under the same name in different folders
        a.name, b.name = f"A:{a.name}", f"B:{b.name}"
    drop = None if args.compare_fail_speedup is None else options.drop_fraction(args.compare_fail_speedup,
                                                                                  "--compare-fail-speedup")
    c = compare.compare_runs(a, b)
    print(compare.render_text(a, b, c))
    if args.markdown:
        out = Path(args.markdown)
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(compare.render_markdown(a, b, c), encoding="utf-8")
        except OSError as err:
            raise saved.CompareError(f"cannot write {out} ({err.strerror or err}).") from None
        print(f"\nmarkdown: {out}")
    if drop is not None:
        failed = compare.speedup_regressions(c, drop)
        for line in failed:
            print(line)
        if failed:
            return EXIT_FAILED
        print(f"no speedup fell significantly by more than {drop:.0%}")
    return EXIT_OK


def _log(args) -> int:
    path = Path(args.results)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise saved.CompareError(f"cannot read {path} as the suite's results.json ({err}).") from None
    if not isinstance(data, dict) or not isinstance(data.get("results"), list):
        raise saved.CompareError(f"{path} is not the suite's results.json (no 'results' list).")
    t = _tracker(args, "compression-bench log")
    files = [f for f in path.parent.iterdir() if f.is_file() and (f.suffix in (".md", ".csv", ".png", ".svg")
                                                                   or f.name == path.name)]
    logged = t.log(data, sorted(files), progress=print)
    print(logged.sentence(t.uri))
    return EXIT_OK


def _machines(args) -> int:
    t = _tracker(args, "compression-bench machines")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for key, run_id in t.sessions_by_machine().items():
            path = t.download_results(run_id, Path(tmp) / run_id)
            results[key] = json.loads(path.read_text(encoding="utf-8"))
    if not results:
        raise tracking.TrackingError(f"no session has been logged to experiment {t.experiment!r} at {t.shown}.")
    headers, rows, notes = machines.machine_table(results, args.model)
    if not rows:
        raise tracking.TrackingError(f"no machine's latest session in {t.experiment!r} has model {args.model!r}.")
    title = f"{args.model}: speedup [95% CI] against each machine's eager float original, latest session per machine"
    print(title)
    print(tabulate(rows, headers=headers))
    for n in notes:
        print("  " + n)
    if args.markdown:
        text = f"#### {title}\n\n{tabulate(rows, headers=headers, tablefmt='github')}\n\n" + "".join(
            f"- {n}\n" for n in notes)
        try:
            Path(args.markdown).write_text(text, encoding="utf-8")
        except OSError as err:
            raise saved.CompareError(f"cannot write {args.markdown} ({err.strerror or err}).") from None
    return EXIT_OK


def _export(args) -> int:
    from compression_bench import zoo
    from compression_bench.benchmarks.measurement import machine
    root = zoo.ArtifactCache(args.cache).root
    models = [m.strip() for m in args.models.split(",") if m.strip()] if args.models else None
    try:
        done = transfer.export_cache(root, args.archive, machine=machine.identify(), models=models, say=print)
    except transfer.TransferIOError as err:
        return _io_failure("export", err)
    print(f"{done.sentence('exported')} from {root} to {args.archive} (machine {done.machine.get('key')})")
    return EXIT_OK


def _io_failure(command: str, err: Exception) -> int:
    """A file of the cache or the archive could not be read or written: one sentence, exit 7 (as a
    run whose cache fails it)."""
    print(f"compression-bench {command}: error: {err}", file=sys.stderr)
    return EXIT_FAULT


def _import(args) -> int:
    from compression_bench import zoo
    from compression_bench.benchmarks.measurement import machine
    cache = zoo.ArtifactCache(args.cache)
    try:
        cache.check_writable()
    except zoo.CacheError as err:
        raise transfer.TransferError(str(err)) from None
    try:
        done = transfer.import_archive(args.archive, cache.root, machine=machine.identify(),
                                       trust_native_code=args.trust_native_code)
    except transfer.TransferIOError as err:
        return _io_failure("import", err)
    print(f"{done.sentence('imported')} from {args.archive} (exported on {done.machine.get('key', '?')}) into "
          f"{cache.root}")
    for line in done.left_out[:20]:
        print(f"  left out: {line}")
    if done.native_skipped:
        n = len(done.native_skipped)
        them = "them" if n > 1 else "it"
        print(f"  skipped {n} compiled Inductor package{'s' if n > 1 else ''}: native code that runs in this process "
              f"when loaded, and the archive cannot prove who built {them} (its checksums and machine key travel "
              f"with it); the suite rebuilds {them} here on first use. To import {them}, run again with "
              f"--trust-native-code, if you trust whoever made {args.archive}.")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    run = {"compare": _compare, "log": _log, "machines": _machines, "export": _export, "import": _import}[args.command]
    try:
        return run(args)
    except (saved.CompareError, options.OptionError, tracking.TrackingError, transfer.TransferError) as err:
        print(f"compression-bench {args.command}: error: {err}", file=sys.stderr)
        return EXIT_MALFORMED


if __name__ == "__main__":
    sys.exit(main())
