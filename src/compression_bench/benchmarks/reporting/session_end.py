"""The end of a benchmark session: sort the records, derive ratios, note drift, compare against a saved
run, draw the plots, write the files, log to MLflow, and the exit status. No pytest. The plugin calls
:func:`finish` with its :class:`~benchmarks.session.session.Session`: its ``config`` chooses the order,
the report folder and the comparison gates, its ``judge`` holds the records; and with the MLflow
tracker the plugin opened (:func:`benchmarks.reporting.tracking.open_tracker`), if any.

    from compression_bench.benchmarks.reporting.session_end import finish
    outcome = finish(session)            # writes report.md, results.json, results.csv and the plots
    for text, style in outcome.lines:
        print(text)
"""
from __future__ import annotations

import functools
import shlex
from dataclasses import dataclass, field
from typing import Mapping

from compression_bench.benchmarks.errors import EXIT_FAILED, EXIT_FAULT, EXIT_INCONCLUSIVE, EXIT_OK
from compression_bench.benchmarks.reporting import compare, files, plots, report, saved, summary, tracking
from compression_bench.benchmarks.results.document import results_document
from compression_bench.benchmarks.results.records import across_seeds, add_ratios


@dataclass
class Outcome:
    """What :func:`finish` did: the exit status, the records (dicts, ratios filled in) and the
    summary lines ``(text, style)`` (see :func:`benchmarks.reporting.summary.lines`)."""
    status: int = EXIT_OK
    records: list[dict] = field(default_factory=list)
    lines: list[tuple[str, str | None]] = field(default_factory=list)
    paths: dict = field(default_factory=dict)
    unwritten: list[str] = field(default_factory=list)
    regressions: list[str] = field(default_factory=list)


def _order(config, r):
    model = config.models.index(r.model) if r.model in config.models else len(config.models)
    method = config.methods.index(r.method) if r.method in config.methods else len(config.methods)
    order = ["eager"] + [n for n in config.runtimes + config.baselines if n != "eager"]
    runtime = order.index(r.runtime) if r.runtime in order else len(order)
    return model, runtime, method, r.batch_size or 0, r.threads or 0


def _compare(session, rows: list[dict], compared: Mapping | None, out: Outcome, notices: list[str]):
    """Accuracy, size, params and latency against ``compared`` (pytest-benchmark's
    ``compared_mapping``); problems become notices, and regressions when they must fail the run."""
    problem, comparison = None, None
    try:
        comparison = compare.session_comparison(compared, rows,
                                                machine_key=(getattr(session, "machine", None) or {}).get("key"))
    except saved.CompareError as err:
        problem = f"accuracy and size not compared: {err}"
    else:
        if comparison is None:
            problem = "accuracy and size not compared: no saved run matched --benchmark-compare."
    speed, accuracy = session.config.compare_fail_speedup, session.config.compare_fail
    if problem:
        notices.append(problem)
        if accuracy is not None:
            out.regressions.append(f"--compare-fail-accuracy could not be checked: {problem}")
        if speed is not None:
            out.regressions.append(f"--compare-fail-speedup could not be checked: {problem}")
        return comparison
    if accuracy is not None:
        out.regressions += compare.accuracy_regressions(comparison, accuracy)
    if speed is not None:
        out.regressions += compare.speedup_regressions(comparison, speed)
    return comparison

def _track(session, tracker: tracking.Tracker, rows: list[dict], header: dict, files: list, out: Outcome,
           notices: list[str]) -> None:
    """Log the session to its MLflow tracker; a failure is said with the command that retries it and
    makes the exit status 7 (the files are written either way). The URI is named with its secret masked
    (:func:`benchmarks.reporting.tracking.redact`): these lines end up in CI logs."""
    try:
        logged = tracker.log(results_document(rows, header), files, progress=session.say)
    except tracking.TrackingError as err:
        where, shown = out.paths.get("json"), tracking.redact(tracker.uri)
        retry = (f"compression-bench log {shlex.quote(str(where))} --mlflow-uri {shlex.quote(shown)} "
                 f"--mlflow-experiment {shlex.quote(tracker.experiment)}"
                 + (" (with the URI's secret where it shows ***)" if shown != tracker.uri else "")
                 if where else "nothing to retry from: results.json was not written")
        out.unwritten.append(tracking.redact(f"not logged to MLflow: {err} Retry: {retry}"))
    else:
        notices.append(logged.sentence(tracker.uri))


def finish(session, compared: Mapping | None = None, tracker: tracking.Tracker | None = None) -> Outcome:
    """Sort the records (model and method order of the selection), derive ratios, note drift,
    compare (when ``comparing``: ``compared`` is pytest-benchmark's ``compared_mapping``), draw the
    plots, write the files, log them to ``tracker`` (None: not logged) and return the :class:`Outcome`.
    Status: 1 when a gate failed or accuracy regressed against the compared run, else 7 when a
    file could not be written, else 6 when a speed gate was inconclusive, else 0."""
    out, c, records = Outcome(), session.config, session.judge.records
    if not records:
        return out
    rows = add_ratios([r.to_dict() for r in sorted(records, key=functools.partial(_order, c))])
    out.records = rows
    notices = [n for n in [report.drift_notice(rows)] if n]
    comparison = _compare(session, rows, compared, out, notices) if c.comparing else None
    drawn = plots.make_plots(across_seeds(rows), c.report_dir, within=c.within, method_order=c.methods)
    header = files.run_header(rows, profile=c.profile.name, batch_sizes=c.batch_sizes,
                               threads=", ".join(map(str, c.thread_counts)), versions=session.versions,
                               repo=session.root, machine=getattr(session, "machine", None))
    if comparison is not None:
        header["Compared against"] = comparison.a
    if getattr(session, "session_id", None):
        header["Session id"] = session.session_id
    out.paths, out.unwritten = files.write_results(rows, header, c.report_dir, within=c.within,
                                                    method_order=c.methods, comparison=comparison,
                                                    plots=drawn, notices=notices)
    if tracker is not None:
        _track(session, tracker, rows, header, [*out.paths.values(), *drawn.paths], out, notices)
    if out.regressions or any(r["gate_failures"] for r in rows):
        out.status = EXIT_FAILED
    elif out.unwritten:
        out.status = EXIT_FAULT
    elif any(r["inconclusive"] for r in rows):
        out.status = EXIT_INCONCLUSIVE
    out.lines = list(summary.lines(rows, within=c.within, method_order=c.methods, comparison=comparison,
                                   notices=notices + drawn.notices, paths=out.paths, unwritten=out.unwritten,
                                   plots=drawn, report_dir=c.report_dir, regressions=out.regressions))
    return out
