"""On-disk artifact cache shared by trained models and compressed variants.

Rules (DESIGN.md section 7):
* an entry is keyed by a hash of everything that determines it (the caller's ``parts``);
* writes are atomic: a temporary file in the same directory, then ``os.replace``;
* concurrent processes take a file lock per entry, so an artifact is built once per machine;
* loads use ``torch.load(weights_only=True)``: nothing in the cache can run code;
* an entry that fails to load, or whose stored format/key does not match, is reported with a
  :class:`CacheWarning`, discarded and rebuilt.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import torch
from filelock import FileLock, Timeout

FORMAT_VERSION = 1


class CacheError(RuntimeError):
    """The cache cannot be used (e.g. the directory is not writable)."""


class CacheWarning(UserWarning):
    """A cache entry was unreadable or stale and has been discarded."""


def default_cache_dir() -> Path:
    env = os.environ.get("ZOO_CACHE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "compression-bench"


def hash_parts(parts: dict[str, Any]) -> str:
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


class ArtifactCache:
    def __init__(self, root: str | os.PathLike | None = None, *, lock_timeout: float = 6 * 3600):
        self.root = Path(root).expanduser() if root is not None else default_cache_dir()
        self.lock_timeout = lock_timeout
        self.builds: list[str] = []  # paths built by this object (used by tests and reports)

    def check_writable(self) -> None:
        """Fail early, with the fix, if entries cannot be written."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=self.root, prefix=".probe-"):
                pass
        except OSError as err:
            raise CacheError(f"cache directory {str(self.root)!r} is not writable ({err.strerror or err}); "
                             f"point ZOO_CACHE or --zoo-cache at a writable directory.") from None

    def path(self, kind: str, name: str, key: str) -> Path:
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)
        return self.root / kind / f"{safe}-{key}.pt"

    def _load(self, path: Path, key: str) -> dict | None:
        if not path.exists():
            return None
        try:
            blob = torch.load(path, map_location="cpu", weights_only=True)
            if not isinstance(blob, dict):
                raise ValueError("not a cache entry")
            if blob.get("format") != FORMAT_VERSION or blob.get("key") != key:
                raise ValueError(f"written by another version (format {blob.get('format')!r})")
            return blob
        except Exception as err:  # noqa: BLE001 - any unreadable entry is rebuilt
            self._discard(path, f"{type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}")
            return None

    def _save(self, path: Path, blob: dict) -> None:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                torch.save(blob, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise

    def _log_build(self, path: Path, seconds: float) -> None:
        """One line per artifact built, in ``<cache>/builds.log``: an audit trail that shows how
        often each entry was built, whichever process built it."""
        line = f"{time.strftime('%Y-%m-%dT%H:%M:%S')}\t{os.getpid()}\t{path.relative_to(self.root)}\t{seconds:.1f}s\n"
        with open(self.root / "builds.log", "a") as f:
            f.write(line)

    def _discard(self, path: Path, why: str) -> None:
        warnings.warn(CacheWarning(f"discarding unreadable cache entry {path} ({why}); rebuilding it"),
                      stacklevel=4)
        try:
            path.unlink()
        except FileNotFoundError:
            pass

    def _cached(self, path: Path, key: str, load: Callable[[dict], Any]) -> tuple[bool, Any]:
        """(True, loaded) for a usable entry; (False, None) if absent or discarded."""
        blob = self._load(path, key)
        if blob is None:
            return False, None
        try:
            return True, load(blob)
        except (ValueError, KeyError, TypeError, RuntimeError) as err:  # stored, but not usable by this code
            self._discard(path, f"{type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}")
            return False, None

    def get_or_build(self, kind: str, name: str, parts: dict[str, Any],
                     build: Callable[[], dict], *, on_wait: Callable[[], None] | None = None,
                     load: Callable[[dict], Any] | None = None) -> tuple[Any, bool]:
        """Return ``(entry, built)``: the cached entry for ``parts``, building it if needed.

        ``build()`` returns a dict of tensors and plain values (``weights_only``-loadable).
        ``load(blob)``, if given, turns the blob into what the caller wants and is returned
        instead of it; when it raises ``ValueError`` (or ``KeyError``, ``TypeError``,
        ``RuntimeError``) on a stored entry, that entry is treated as unreadable: reported,
        discarded and rebuilt.
        """
        load = load or (lambda blob: blob)
        key = hash_parts(parts)
        path = self.path(kind, name, key)
        ok, entry = self._cached(path, key, load)
        if ok:
            return entry, False
        self.check_writable()
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(path) + ".lock", timeout=self.lock_timeout)
        try:
            lock.acquire(timeout=0)
        except Timeout:  # another process is building this entry: wait for it
            if on_wait is not None:
                on_wait()
            lock.acquire()
        try:
            ok, entry = self._cached(path, key, load)  # built by another process while we waited
            if ok:
                return entry, False
            t0 = time.time()
            blob = dict(build())
            blob.update(format=FORMAT_VERSION, key=key, parts=json.loads(json.dumps(parts, default=str)))
            self._save(path, blob)
            self.builds.append(str(path))
            self._log_build(path, time.time() - t0)
            return load(blob), True
        finally:
            lock.release()
