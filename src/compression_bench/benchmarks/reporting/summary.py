"""What the session prints at its end: tables, comparison, stability, recommendations, gates. No pytest.

:func:`lines` yields ``(text, style)`` pairs: style ``None`` (plain), ``"yellow"``, ``"red"``, or
``"section"`` / ``"section-warn"`` for a heading; the pytest layer writes them to the terminal.
"""
from __future__ import annotations

from typing import Iterator

from compression_bench.benchmarks.reporting import crossruntime, recommend, report
from compression_bench.benchmarks.errors import EXIT_INCONCLUSIVE
from compression_bench.benchmarks.results import records as records_



def lines(records: list[dict], *, within: float, method_order, comparison, notices, paths: dict,
          unwritten: list[str], plots, report_dir, regressions: list[str]) -> Iterator[tuple[str, str | None]]:
    yield report.render_tables(records), None
    yield "", None
    shown = records_.across_seeds(records)  # several seeds: one row per method, mean and spread
    for line in crossruntime.render(shown, within):
        yield line, None
    if comparison is not None:
        yield (f"changes against {comparison.a} (A, the compared run) in this run (B): accuracy in points "
               f"B − A, size, params and latency as ratios B/A"), None
        yield "", None
        yield comparison.render(), None
        yield "", None
        for line in comparison.summary():
            yield line, None
        yield "", None
    drift = report.drift_lines(records)
    if drift:
        yield "timing stability (the original's latency each time it was timed in this run):", None
        for line in drift:
            yield "  " + line, None
        yield "", None
    noise = report.noise_line(records)
    if noise:
        yield noise, None
        yield "", None
    yield f"recommendations (within {recommend.points(within)} of the original's accuracy):", None
    for line in report.render_recommendations(shown, within=within, method_order=method_order):
        yield "  " + line, None
    yield "", None
    for note in notices:
        yield note, "yellow"
    if paths:
        yield f"results: {', '.join(str(p) for p in paths.values())}", None
    for line in unwritten:
        yield line, "red"
    if plots and plots.paths:
        yield f"plots: {len(plots.paths)} PNG files in {report_dir}", None
    yield from _verdicts(records, regressions)


def _verdicts(records: list[dict], regressions: list[str]) -> Iterator[tuple[str, str | None]]:
    """The sections that say what did not pass: failed gates, slowdowns, rows not run, inconclusive
    speed gates, regressions against the compared run (each only when it has something to list)."""
    failed = [m for r in records for m in r.get("gate_failures") or []]
    if failed:
        yield "gates failed (each in its own test)", "section"
        for msg in failed:
            yield msg, "red"
    flagged = [f"{r['model']} / {r['method']}: {flag}" for r in records for flag in r.get("flags") or []]
    if flagged:
        yield "slower than what they replace (⚠ in the Speedup column; a failure only where fail_if_slower is set)", \
            "section-warn"
        for msg in flagged:
            yield msg, "yellow"
    skipped = [f"{r['model']} / {r['method']}" + ("" if (r.get("runtime") or "eager") == "eager" else f" on {r['runtime']}")
               + f": {r['status']}" for r in records if str(r.get("status") or "").startswith("n/a")]
    if skipped:
        yield "not run: declared unsupported in the thresholds file, or not expressible on the runtime", "section-warn"
        for msg in dict.fromkeys(skipped):
            yield msg, "yellow"
    inconclusive = [m for r in records for m in r.get("inconclusive") or []]
    if inconclusive:
        yield f"speed gates inconclusive (exit status {EXIT_INCONCLUSIVE} when nothing else failed)", "section-warn"
        for msg in inconclusive:
            yield msg, "yellow"
    if regressions:
        yield "regressions against the compared run", "section"
        for msg in regressions:
            yield msg, "red"
