"""mkdocs hook of the documentation site (``hooks:`` in mkdocs.yml): nothing generated is committed.

Two jobs, both at build time:

1. **Placeholders.** A page holds a marker such as ``<!-- generated:options -->`` on a line of its
   own; :func:`on_page_markdown` replaces it with Markdown made by the suite's own code:

   - ``options`` / ``zoo-options``: the option tables, from the option definitions in
     ``src/compression_bench.benchmarks.settings.options.py`` (``OPTIONS`` and ``ZOO_FLAGS``): flag, environment variable, default, help;
   - ``example-source``: one paragraph naming the date, profile, machine (capability class, CPU) and
     git commit of ``docs/data/example-results.json``, read from the file's header;
   - ``example-header``: that header as a table;
   - ``example-tables``: the result tables, rendered from the file's records by the functions that
     write ``report.md`` (``compression_bench.benchmarks.reporting.report``); options ``model=NAME``,
     ``runtime=NAME`` and ``limit=N`` select tables;
   - ``example-recommendations`` and ``example-crossruntime``: the recommendations and the
     cross-runtime tables of ``report.md``, from the same file;
   - ``report-notes``: the notes paragraph ``report.md`` prints under its header;
   - ``changelog``: the repository's ``CHANGELOG.md`` without its first heading.

   An unknown marker, or a missing or unreadable results file, stops the build with one sentence.

   The docstrings cross-reference in Sphinx's roles (:class:`Session`); :func:`on_page_content`
   drops the role names from the rendered API pages, leaving the code span.

2. **API reference.** mkdocstrings reads the package from ``src/`` (``paths`` in mkdocs.yml).
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from mkdocs.exceptions import PluginError

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = Path("data") / "example-results.json"          # relative to docs_dir
MARKER = re.compile(r"^<!--\s*generated:([a-z-]+)((?:\s+[a-z]+=[^\s]+)*)\s*-->\s*$", re.MULTILINE)


# ---------------------------------------------------------------- API reference

SPHINX_ROLE = re.compile(r":(?:class|func|meth|data|mod|attr|exc|obj):(?=<code>)")


def on_page_content(html: str, page, config, files):
    """The API pages: ``:class:<code>Session</code>`` -> ``<code>Session</code>``."""
    return SPHINX_ROLE.sub("", html) if page.file.src_uri.startswith("reference/") else html


# ---------------------------------------------------------------- tables

def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(headers: list[str], rows: list[list]) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def _default(value) -> str:
    return "–" if value is None else f"`{value}`"


def options_table() -> str:
    """The benchmark options, as the pytest plugin declares them (help texts filled in as it fills them)."""
    from compression_bench import compression, zoo
    from compression_bench.benchmarks.settings import options
    from compression_bench.benchmarks import runtimes
    names = {"models": ", ".join(zoo.list_models()), "methods": ", ".join(compression.list_methods()),
             "runtimes": ", ".join(runtimes.list_runtimes())}
    rows = [[f"`{o.flag}`" + (f" `{o.metavar}`" if o.metavar else ""), _default(o.default),
             o.kwargs(**names)["help"]] for o in options.OPTIONS]
    return _table(["option", "default", "what"], rows)


def zoo_options_table() -> str:
    """The zoo options, with the environment variable each falls back to."""
    from compression_bench.benchmarks.settings import options
    rows = []
    for flag, kwargs in options.ZOO_FLAGS:
        dest = flag.lstrip("-").replace("-", "_")
        env = options.ZOO_OPTIONS.get(dest)
        rows.append([f"`{flag}`", f"`{env}`" if env else "–",
                     "off" if kwargs.get("action") == "store_true" else _default(kwargs.get("default")),
                     kwargs.get("help", "")])
    return _table(["option", "environment variable", "default", "what"], rows)


# ---------------------------------------------------------------- the example results file

def _load_example(config) -> tuple[dict, list[dict]]:
    path = Path(config["docs_dir"]) / EXAMPLE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        header, records = data["header"], data["results"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise PluginError(f"docs: the example results file {path} cannot be read ({err}); copy a run's "
                          f"reports/results.json there") from None
    if not records:
        raise PluginError(f"docs: the example results file {path} holds no results")
    return header, records


def example_source(header: dict) -> str:
    get = lambda key: header.get(key) or "not recorded"  # noqa: E731
    return (f"These figures come from `docs/data/example-results.json`, the `results.json` of a run of the "
            f"**{get('Profile')}** profile on **{get('Date')}**, on a machine of capability class "
            f"**`{get('Capability class')}`** (CPU: {get('CPU')}), at git commit **`{get('Git commit')}`**, "
            f"with {get('Threads')} timing thread(s) at batch size(s) {get('Batch size(s)')}. They are "
            f"rendered from that file when the site is built, by the functions that write `report.md`.")


def example_header(header: dict) -> str:
    return _table(["field", "value"], [[k, v] for k, v in header.items()])


def _selected(records: list[dict], args: dict) -> list[tuple[str, tuple, list[dict]]]:
    from compression_bench.benchmarks.results import records as records_
    groups = records_.groups(records_.across_seeds(records))
    if "model" in args:
        groups = [g for g in groups if g[0] == args["model"]]
    if "runtime" in args:
        groups = [g for g in groups if (g[1][2] if len(g[1]) > 2 else "eager") == args["runtime"]]
    if "limit" in args:
        groups = groups[:int(args["limit"])]
    if not groups:
        raise PluginError(f"docs: no table of the example results matches {args}")
    return groups


def example_tables(records: list[dict], args: dict) -> str:
    from compression_bench.benchmarks.reporting import report
    return "\n\n".join(report.group_title(model, setting, recs) + "\n\n" + report.render_table(recs)
                       for model, setting, recs in _selected(records, args))


def _within() -> float:
    from compression_bench.benchmarks.settings import options
    return next(o.default for o in options.OPTIONS if o.flag == "--recommend-within")


def example_recommendations(records: list[dict]) -> str:
    from compression_bench.benchmarks.results import records as records_
    from compression_bench.benchmarks.reporting import report
    lines = report.render_recommendations(records_.across_seeds(records), within=_within(), markdown=True)
    return "\n".join(lines) if lines else "(no recommendation: the file holds no timed variants)"


def example_crossruntime(records: list[dict]) -> str:
    from compression_bench.benchmarks.reporting import crossruntime
    from compression_bench.benchmarks.results import records as records_
    lines = crossruntime.render(records_.across_seeds(records), _within(), heading="### ")
    return "\n".join(lines) if lines else "(no cross-runtime table: the file holds one runtime only)"


def report_notes() -> str:
    from compression_bench.benchmarks.reporting import report
    return report.NOTES


def changelog() -> str:
    try:
        text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    except OSError as err:
        raise PluginError(f"docs: cannot read {ROOT / 'CHANGELOG.md'} ({err})") from None
    return re.sub(r"\A#\s[^\n]*\n", "", text, count=1).strip()  # the page has its own title


# ---------------------------------------------------------------- the hook

#: placeholder name -> function of (the page's example loader, the marker's key=value arguments)
PLACEHOLDERS = {
    "options": lambda example, args: options_table(),
    "zoo-options": lambda example, args: zoo_options_table(),
    "example-source": lambda example, args: example_source(example()[0]),
    "example-header": lambda example, args: example_header(example()[0]),
    "example-tables": lambda example, args: example_tables(example()[1], args),
    "example-recommendations": lambda example, args: example_recommendations(example()[1]),
    "example-crossruntime": lambda example, args: example_crossruntime(example()[1]),
    "report-notes": lambda example, args: report_notes(),
    "changelog": lambda example, args: changelog(),
}


def on_page_markdown(markdown: str, page, config, files):
    if "<!-- generated:" not in markdown:
        return markdown
    cache: dict = {}

    def example():
        if "example" not in cache:
            cache["example"] = _load_example(config)
        return cache["example"]

    def replace(match: re.Match) -> str:
        name, args = match.group(1), dict(a.split("=", 1) for a in match.group(2).split())
        if name not in PLACEHOLDERS:
            raise PluginError(f"docs: {page.file.src_path}: unknown placeholder <!-- generated:{name} -->; "
                              f"known: {', '.join(PLACEHOLDERS)}")
        return PLACEHOLDERS[name](example, args)

    out = MARKER.sub(replace, markdown)
    if "<!-- generated:" in out:
        raise PluginError(f"docs: {page.file.src_path}: a <!-- generated:... --> marker is not on a line of its own "
                          f"or is malformed")
    return out
