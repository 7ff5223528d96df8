"""Runs logged to an MLflow tracking server, and read back from it. No pytest.

One MLflow run per session (tags: machine key, capability class, CPU, commit, profile, session id;
the report, plots and result files as artifacts) with one child run per record (params: model,
method, runtime, batch, threads, seed; metrics: every number the record has, accuracy and its
interval, speedups and their intervals, latency, size, MACs, peak memory, build seconds).

Logging is idempotent per session: a session's parent run is found again by its session id, and
only the records (child runs) it does not have yet are logged, so ``compression-bench log
reports/results.json`` after a failure mid-run completes the run instead of duplicating it.

MLflow is an optional dependency (the ``mlflow`` extra); it is imported only when a tracking URI is
given.

A tracking URI may carry a secret (``https://user:token@host``, ``?access_token=...``): every message
names it through :func:`redact` (``https://user:***@host``), and only the connections use it whole.

Its length (about 360 lines) is one concern: every use of MLflow's API (checking the server, logging
a session and its records, finding a session again, reading results back, the machines table's query).
"""
from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import tempfile
import urllib.parse
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

DEFAULT_EXPERIMENT = "compression-bench"
#: tag names (MLflow's own start with "mlflow.")
SESSION_TAG, RECORD_TAG, KIND_TAG = "cb.session_id", "cb.record", "cb.kind"
#: the results file every session run carries, and what `compare` and `machines` read back
RESULTS_ARTIFACT = "results.json"
#: record fields logged as params (what identifies a record); every other number is a metric
PARAM_FIELDS = ("model", "method", "label", "compression", "family", "runtime", "batch_size", "threads", "seed",
                "profile", "dataset", "status")
#: header entries logged as tags of the session run
HEADER_TAGS = {"Machine key": "machine_key", "Capability class": "capability_class", "CPU": "cpu",
               "Git commit": "commit", "Profile": "profile", "Date": "date", "torch": "torch",
               "onnxruntime": "onnxruntime"}


class TrackingError(RuntimeError):
    """The tracking server cannot be used; the message is one sentence that says what to do."""


#: the user information of a URI: ``user:password@`` (a password may hold an unescaped ``@``) or ``token@``
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^\s/?#@:]*)(?P<password>:[^\s/?#]*)?@")
#: a query parameter whose name says it carries a secret: ``?token=``, ``&access_token=``, ``api_key``, ``sig``
_SECRET_PARAM = re.compile(r"(?P<name>[?&;][^\s=&#?]*(?:token|passw|pwd|secret|key|sig|auth|credential)[^\s=&#?]*=)"
                           r"[^\s&#]*", re.IGNORECASE)


def redact(text: str) -> str:
    """``text`` (a URI, or a message naming one) with the secret parts of every URI in it masked:
    ``https://user:***@host``, ``https://***@host`` (a token alone), ``?token=***``. For messages, logs,
    report text and tags: a tracking URI's credentials must never reach a terminal, a CI log or a
    shared report; connections use the URI as given."""
    def userinfo(m: re.Match) -> str:
        return f"{m['scheme']}{m['user']}:***@" if m["password"] is not None else f"{m['scheme']}***@"
    return _SECRET_PARAM.sub(lambda m: m["name"] + "***", _USERINFO.sub(userinfo, str(text)))


def _health_request(uri: str) -> urllib.request.Request:
    """The request of the health check: the URI's credentials move from the address (where urllib reads
    them as part of the host name) to a basic-auth header, as MLflow's own client sends them; without
    any, MLflow's ``MLFLOW_TRACKING_USERNAME``/``_PASSWORD`` or ``MLFLOW_TRACKING_TOKEN``."""
    parts = urllib.parse.urlsplit(uri)
    host = parts.netloc.rpartition("@")[2]
    url = urllib.parse.urlunsplit((parts.scheme, host, parts.path.rstrip("/") + "/health", parts.query, ""))
    headers = {}
    user, password = parts.username, parts.password
    if user is None and os.environ.get("MLFLOW_TRACKING_USERNAME"):
        user, password = os.environ["MLFLOW_TRACKING_USERNAME"], os.environ.get("MLFLOW_TRACKING_PASSWORD")
    if user is not None:
        pair = f"{urllib.parse.unquote(user)}:{urllib.parse.unquote(password or '')}"
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
    elif os.environ.get("MLFLOW_TRACKING_TOKEN"):
        headers["Authorization"] = "Bearer " + os.environ["MLFLOW_TRACKING_TOKEN"]
    return urllib.request.Request(url, headers=headers)


def open_tracker(uri: str | None, experiment: str | None = None) -> "Tracker | None":
    """The tracker of ``uri`` (``Config.mlflow_uri``: ``--mlflow-uri`` or ``$MLFLOW_TRACKING_URI``), its
    server checked reachable now, before anything trains (:class:`TrackingError` when it is not); None
    without a URI."""
    if not uri:
        return None
    tracker = Tracker(uri, experiment)
    tracker.check()
    return tracker


def record_key(r: dict) -> str:
    """What identifies a record within a session: model, method, runtime, batch, threads, seed."""
    return "|".join(str(r.get(k)) for k in ("model", "method", "runtime", "batch_size", "threads", "seed"))


def session_id_of(data: dict) -> str:
    """The session id of a results file: its own, or (files written before ids existed) a digest of its
    header, which is unique to the session that wrote it."""
    sid = (data.get("header") or {}).get("Session id")
    if sid:
        return str(sid)
    import hashlib
    return "h" + hashlib.sha256(json.dumps(data.get("header") or {}, sort_keys=True).encode()).hexdigest()[:15]


@contextlib.contextmanager
def _patient(retries: int, timeout: int):
    """MLflow's HTTP retry count and timeout for the body, unless the user set them: its defaults retry
    for minutes, which turns a dead server into a hung session."""
    names = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(retries), "MLFLOW_HTTP_REQUEST_TIMEOUT": str(timeout),
             # the suite says where the run is in its own words, once, without progress bars
             "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
    set_here = [n for n in names if n not in os.environ]
    os.environ.update({n: names[n] for n in set_here})
    try:
        yield
    finally:
        for n in set_here:
            os.environ.pop(n, None)


@dataclass
class Logged:
    """What :meth:`Tracker.log` did: the session run, records logged now and before, artifacts."""
    run_id: str
    experiment: str
    experiment_id: str = ""
    logged: int = 0
    already: int = 0
    artifacts: list[str] = field(default_factory=list)

    def sentence(self, uri: str) -> str:
        """``logged to MLflow: <where> ...``; ``uri`` is named with its secret masked (:func:`redact`)."""
        uri = redact(uri)
        before = f" ({self.already} were already there)" if self.already else ""
        where = (f"{uri.rstrip('/')}/#/experiments/{self.experiment_id}/runs/{self.run_id}"
                 if uri.startswith(("http://", "https://")) else f"{uri}, run {self.run_id}")
        return (f"logged to MLflow: {where} (experiment {self.experiment!r}), {self.logged} record(s){before}, "
                f"{len(self.artifacts)} file(s)")


class Tracker:
    """An MLflow tracking server (or any MLflow tracking URI) the suite logs to and reads from."""

    def __init__(self, uri: str, experiment: str | None = None):
        self.uri = uri  # what connects, secret included: name it in text as :attr:`shown`
        self.experiment = experiment or DEFAULT_EXPERIMENT
        self._client = None

    @property
    def shown(self) -> str:
        """The URI as messages name it, its secret masked (:func:`redact`)."""
        return redact(self.uri)

    @property
    def client(self):
        if self._client is None:
            try:
                from mlflow.tracking import MlflowClient
            except ImportError:
                raise TrackingError("logging to MLflow needs the mlflow package: pip install "
                                    "'compression-bench[mlflow]' (or pip install mlflow).") from None
            self._client = MlflowClient(tracking_uri=self.uri)
        return self._client

    # ------------------------------------------------------------ reachability

    def check(self, timeout: float = 5.0) -> None:
        """Raise :class:`TrackingError` when the server cannot be reached (called before anything trains)."""
        _ = self.client  # the package is there
        if self.uri.startswith(("http://", "https://")):
            try:
                with urllib.request.urlopen(_health_request(self.uri), timeout=timeout) as resp:  # noqa: S310
                    status = resp.status
            except urllib.error.HTTPError as err:  # answered, with an error status (401: the credentials)
                status = err.code
            except (urllib.error.URLError, OSError, ValueError) as err:
                reason = redact(getattr(err, "reason", err))
                raise TrackingError(f"the MLflow tracking server at {self.shown} cannot be reached ({reason}); start "
                                    f"it, fix --mlflow-uri / MLFLOW_TRACKING_URI, or leave both unset to log "
                                    f"nowhere.") from None
            if status != 200:
                raise TrackingError(f"the MLflow tracking server at {self.shown} answered its health check with "
                                    f"HTTP {status}; check the server" + (" and the credentials." if status in (401, 403)
                                                                          else "."))
            return
        try:
            with _patient(0, int(timeout)):
                self.client.search_experiments(max_results=1)
        except Exception as err:  # noqa: BLE001 - any store error: the URI is unusable
            raise TrackingError(f"the MLflow tracking URI {self.shown} cannot be used ({type(err).__name__}: "
                                f"{_first_line(err)}); fix --mlflow-uri / MLFLOW_TRACKING_URI.") from None

    # ------------------------------------------------------------ logging

    def _experiment_id(self, create: bool = True) -> str | None:
        exp = self.client.get_experiment_by_name(self.experiment)
        if exp is not None:
            return exp.experiment_id
        if not create:
            return None
        exp_id = self.client.create_experiment(self.experiment)
        # MLflow's UI then opens the experiment on its runs table (model training), not its GenAI overview
        self.client.set_experiment_tag(exp_id, "mlflow.experimentKind", "custom_model_development")
        return exp_id

    def session_run(self, session_id: str, experiment_id: str | None = None):
        """The parent run of ``session_id`` in this experiment, or None."""
        exp = experiment_id or self._experiment_id(create=False)
        if exp is None:
            return None
        runs = self.client.search_runs([exp], filter_string=f"tags.`{SESSION_TAG}` = '{session_id}' and "
                                                            f"tags.`{KIND_TAG}` = 'session'", max_results=1)
        return runs[0] if runs else None

    def log(self, data: dict, files: Iterable[str | Path] = (), *,
            progress: Callable[[str], None] | None = None) -> Logged:
        """Log a session's results (the dict of ``results.json``) and its files; returns what was logged.
        Raises :class:`TrackingError` (one sentence) when the server fails; what was logged stays, and
        logging the same results again adds only what is missing."""
        try:
            with _patient(2, 20):
                return self._log(data, [Path(f) for f in files], progress)
        except TrackingError:
            raise
        except Exception as err:  # noqa: BLE001 - MLflow raises many types for a dead server
            raise TrackingError(f"logging to MLflow at {self.shown} failed ({type(err).__name__}: "
                                f"{_first_line(err)}).") from None

    def _log(self, data: dict, files: list[Path], progress) -> Logged:
        from mlflow.entities import Metric, Param, RunTag
        header, records = data.get("header") or {}, data.get("results") or []
        sid = session_id_of(data)
        exp = self._experiment_id()
        parent = self.session_run(sid, exp)
        if parent is None:
            tags = {SESSION_TAG: sid, KIND_TAG: "session",
                    "mlflow.runName": f"{header.get('Profile', '?')} {header.get('Machine key', '?')} "
                                      f"{header.get('Git commit', '')}".strip()}
            tags.update({tag: str(header[h]) for h, tag in HEADER_TAGS.items() if header.get(h) not in (None, "")})
            parent = self.client.create_run(exp, tags=tags)
        run_id = parent.info.run_id
        done = {r.data.tags.get(RECORD_TAG) for r in self._children(exp, run_id)}
        out = Logged(run_id, self.experiment, exp, already=len(done))
        ts = _millis(header.get("Date"))
        for r in records:
            key = record_key(r)
            if key in done:
                continue
            tags = {"mlflow.parentRunId": run_id, RECORD_TAG: key, KIND_TAG: "record", SESSION_TAG: sid,
                    "model": str(r.get("model")), "method": str(r.get("method")), "runtime": str(r.get("runtime")),
                    "machine_key": str(header.get("Machine key", "")),
                    "mlflow.runName": f"{r.get('model')}/{r.get('method')}@{r.get('runtime')}"}
            child = self.client.create_run(exp, tags=tags)
            params = [Param(k, str(r.get(k))[:500]) for k in PARAM_FIELDS if r.get(k) is not None]
            metrics = [Metric(k, float(v), ts, 0) for k, v in r.items()
                       if k not in PARAM_FIELDS and isinstance(v, (int, float)) and not isinstance(v, bool)]
            self.client.log_batch(child.info.run_id, metrics=metrics, params=params,
                                  tags=[RunTag("flags", "; ".join(r.get("flags") or [])[:4000])] if r.get("flags") else [])
            failed = bool(r.get("status")) or bool(r.get("gate_failures"))
            self.client.set_terminated(child.info.run_id, "FAILED" if failed else "FINISHED")
            out.logged += 1
            if progress and out.logged % 10 == 0:
                progress(f"MLflow: {out.logged + out.already} of {len(records)} records logged")
        logged_files = set(parent.data.tags.get("cb.files", "").split(",")) - {""}
        for f in files:  # results.json below, always: an earlier partial log may have left a partial one
            if f.is_file() and f.name != RESULTS_ARTIFACT and f.name not in logged_files:
                self.client.log_artifact(run_id, str(f))
                out.artifacts.append(f.name)
        with tempfile.TemporaryDirectory() as tmp:
            p = Path(tmp) / RESULTS_ARTIFACT
            p.write_text(json.dumps(data, indent=2), encoding="utf-8")
            self.client.log_artifact(run_id, str(p))
            out.artifacts.append(p.name)
        self.client.set_tag(run_id, "cb.files", ",".join(sorted(logged_files | set(out.artifacts))))
        self.client.set_tag(run_id, "cb.records", str(out.logged + out.already))
        self.client.set_terminated(run_id, "FINISHED")
        return out

    def _children(self, experiment_id: str, run_id: str) -> list:
        runs, token = [], None
        while True:
            page = self.client.search_runs([experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{run_id}'",
                                           max_results=1000, page_token=token)
            runs += list(page)
            token = page.token
            if not token:
                return runs

    # ------------------------------------------------------------ reading back

    def find_session(self, ref: str) -> str:
        """The run id of a session: ``ref`` is a run id, or ``machine=KEY[,commit=SHA]`` (the latest such
        session in the experiment)."""
        try:
            with _patient(1, 20):
                if "=" not in ref:
                    self.client.get_run(ref)
                    return ref
                want = dict(part.split("=", 1) for part in ref.split(",") if "=" in part)
                unknown = set(want) - {"machine", "commit"}
                if unknown:
                    raise TrackingError(f"an MLflow run reference takes machine=KEY and commit=SHA, not "
                                        f"{', '.join(sorted(unknown))}.")
                exp = self._experiment_id(create=False)
                if exp is None:
                    raise TrackingError(f"there is no experiment {self.experiment!r} at {self.shown}.")
                terms = [f"tags.`{KIND_TAG}` = 'session'"]
                if "machine" in want:
                    terms.append(f"tags.machine_key = '{want['machine']}'")
                if "commit" in want:
                    terms.append(f"tags.commit = '{want['commit']}'")
                runs = self.client.search_runs([exp], filter_string=" and ".join(terms), max_results=1,
                                               order_by=["attributes.start_time DESC"])
                if not runs:
                    raise TrackingError(f"no session run matches {ref!r} in experiment {self.experiment!r} at "
                                        f"{self.shown}.")
                return runs[0].info.run_id
        except TrackingError:
            raise
        except Exception as err:  # noqa: BLE001
            raise TrackingError(f"MLflow run {ref!r} cannot be read from {self.shown} ({type(err).__name__}: "
                                f"{_first_line(err)}).") from None

    def download_results(self, run_id: str, dest: str | Path) -> Path:
        """The ``results.json`` artifact of session run ``run_id``, downloaded into ``dest``."""
        try:
            with _patient(1, 60):
                from mlflow.artifacts import download_artifacts
                path = download_artifacts(run_id=run_id, artifact_path=RESULTS_ARTIFACT, dst_path=str(dest),
                                          tracking_uri=self.uri)
        except Exception as err:  # noqa: BLE001
            raise TrackingError(f"the results of MLflow run {run_id} cannot be downloaded from {self.shown} "
                                f"({type(err).__name__}: {_first_line(err)}).") from None
        return Path(path)

    def sessions_by_machine(self) -> dict[str, str]:
        """machine key -> run id of its latest session run in the experiment."""
        try:
            with _patient(1, 20):
                exp = self._experiment_id(create=False)
                if exp is None:
                    raise TrackingError(f"there is no experiment {self.experiment!r} at {self.shown}.")
                runs = self.client.search_runs([exp], filter_string=f"tags.`{KIND_TAG}` = 'session'",
                                               max_results=1000, order_by=["attributes.start_time DESC"])
        except TrackingError:
            raise
        except Exception as err:  # noqa: BLE001
            raise TrackingError(f"the session runs of experiment {self.experiment!r} cannot be read from "
                                f"{self.shown} ({type(err).__name__}: {_first_line(err)}).") from None
        latest: dict[str, str] = {}
        for r in runs:
            latest.setdefault(r.data.tags.get("machine_key", "unknown"), r.info.run_id)
        return latest


def _millis(date: str | None) -> int:
    import time
    from datetime import datetime, timezone
    if date:
        try:
            return int(datetime.strptime(date, "%Y-%m-%d %H:%M:%S UTC").replace(tzinfo=timezone.utc).timestamp() * 1000)
        except ValueError:
            pass
    return int(time.time() * 1000)


def _first_line(err: BaseException) -> str:
    """The first line of an error, any URI in it redacted (MLflow names the whole request URL)."""
    text = redact(str(err)).strip()
    return text.splitlines()[0][:200] if text else ""
