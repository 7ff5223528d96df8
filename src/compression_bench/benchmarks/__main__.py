"""``compression-bench compare A B``: accuracy, size, params and latency of two saved runs.

A and B are saved runs: paths to pytest-benchmark JSON files (``--benchmark-save``,
``--benchmark-autosave``, ``--benchmark-json``) or to the suite's ``results.json``, or
pytest-benchmark run ids such as ``0001`` looked up in ``.benchmarks/`` (or ``--storage DIR``).
Exit status: 0 when compared, 1 when ``--compare-fail-speedup`` found a significant speedup drop, 2 when
a run cannot be read or compared (one-sentence error).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from compression_bench.benchmarks.reporting import compare, saved
from compression_bench.benchmarks.session import options


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="compression-bench",
                                description="Tools for the compression benchmark suite's saved runs.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    c = sub.add_parser("compare", help="compare two saved runs metric by metric, one table per model",
                       description="Compare two saved runs metric by metric: accuracy A → B (Δ points), size, "
                                   "params and median latency A → B (ratios B/A), one table per model.")
    c.add_argument("a", metavar="A", help="the older run: a saved-run JSON file or a run id such as 0001")
    c.add_argument("b", metavar="B", help="the newer run: a saved-run JSON file or a run id such as 0002")
    c.add_argument("--markdown", metavar="OUT", help="also write the comparison as Markdown to this file")
    c.add_argument("--storage", metavar="DIR", default=saved.DEFAULT_STORAGE,
                   help=f"pytest-benchmark storage folder for run ids (default: {saved.DEFAULT_STORAGE})")
    c.add_argument("--compare-fail-speedup", metavar="DROP", default=None,
                   help="exit 1 when a variant's speedup fell from A to B significantly (its 95%% interval "
                        "excludes no change) and by more than DROP, e.g. 10%% or 0.1")
    return p


def _compare(args) -> int:
    storage = args.storage[len("file://"):] if args.storage.startswith("file://") else args.storage
    runs = []
    for ref in (args.a, args.b):
        path = saved.resolve(ref, storage)
        runs.append(saved.load_run(path))
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
            return 1
        print(f"no speedup fell significantly by more than {drop:.0%}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _compare(args)
    except (saved.CompareError, options.OptionError) as err:
        print(f"compression-bench {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
