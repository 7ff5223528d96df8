"""The suite's results document, ``results.json``: the run header and every record's file fields
(:data:`benchmarks.results.schema.FIELDS`), written at the session end and read back to compare runs.
No pytest.

    document = results_document(rows, header)     # what results.json holds
    rows = records_from_document(document, "results.json")

A document read back must have, in every entry with figures, the schema's ``REQUIRED`` fields, its
``NUMERIC`` ones as numbers, names for its model, method and runtime and whole numbers for its batch
size, threads and seed (what pairs it with another run's); one that has not is a
:class:`ResultsError` that names the source, the entry and the field.
"""
from __future__ import annotations

import math
from typing import Mapping

from compression_bench.benchmarks.results import schema
from compression_bench.benchmarks.results.records import number as _num

FORMAT = 1
REQUIRED = schema.REQUIRED
NUMERIC = tuple(k for k in REQUIRED if k in schema.NUMERIC)
#: fields that identify a record (its pair in the other run is found by them): names, and whole numbers
_NAMES, _WHOLE = ("model", "method", "runtime"), ("batch_size", "threads", "seed")


class ResultsError(Exception):
    """Results that cannot be read or compared; the message is one sentence that names the source and the fix."""


def results_document(records: list[dict], header: dict) -> dict:
    """What results.json holds: the format, the run header and every record's file fields."""
    return {"format": FORMAT, "header": header, "results": [{k: r.get(k) for k in schema.FIELDS} for r in records]}


def records_from_document(data: Mapping, source: str) -> list[dict]:
    """The records with figures of a parsed results document (``failed:`` and ``n/a:`` rows hold none),
    each the dict form of :class:`benchmarks.results.schema.Record`; :class:`ResultsError` for an
    incomplete or malformed entry."""
    out = []
    for i, r in enumerate(data["results"], 1):
        if isinstance(r, Mapping) and r.get("status"):
            continue  # failed: or n/a: rows hold no figures
        if not isinstance(r, Mapping) or any(k not in r for k in REQUIRED) or \
                any(_num(r[k]) is None for k in NUMERIC):
            raise ResultsError(f"{source} is a results file with an incomplete entry (each needs "
                               f"{', '.join(REQUIRED)}).")
        r = dict(r)
        problem = malformed(r)
        if problem:
            raise ResultsError(f"{source} is a results file whose entry {i}{_entry(r)} {problem}.")
        out.append(schema.Record.from_dict(r).to_dict())
    if not out:
        raise ResultsError(f"{source} holds no results.")
    return out


def _entry(r: Mapping) -> str:
    """``(M / static_int8)``: an entry as far as its names say, for messages."""
    names = []
    for k in ("model", "method"):
        if not (isinstance(r.get(k), str) and r[k]):
            break
        names.append(r[k])
    return f" ({' / '.join(names)})" if names else ""


def malformed(r: dict) -> str | None:
    """What makes record ``r`` unusable for a comparison (``has batch_size 'abc', not a whole number``),
    or None; whole numbers written as floats (64.0) become ints in place."""
    for k in _NAMES:
        v = r.get(k)
        if not (isinstance(v, str) and v) and not (k == "runtime" and v is None):
            return f"has {k} {v!r}, not a name"
    for k in _WHOLE:
        v = r.get(k)
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v != int(v):
            return f"has {k} {v!r}, not a whole number"
        r[k] = int(v)
    for k in schema.NUMERIC:
        v = r.get(k)
        if v is not None and _num(v) is None and not (isinstance(v, float) and math.isnan(v)):
            return f"has {k} {v!r}, not a number"
    return None
