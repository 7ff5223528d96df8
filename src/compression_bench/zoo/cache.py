"""On-disk artifact cache shared by trained models, compressed variants and their metrics.

Rules:
* an entry is keyed by a hash of everything that determines it (the caller's ``parts``: settings,
  the content digest of its parent, fingerprints of the code that builds it, library versions);
* writes are atomic: a temporary file in the same directory, then ``os.replace``;
* concurrent processes take a file lock per entry, so an artifact is built once per machine;
* every entry carries a SHA-256 checksum of its content, verified on every load. It catches
  accidental corruption (a flipped bit, a truncated copy, an edit by a tool that did not update
  it); it cannot catch a deliberate change by someone who can write the cache, since they can
  rewrite the checksum too;
* loads use ``torch.load(weights_only=True)``: loading an entry runs no code. But some entries hold
  programs: a runtime artifact of Inductor is a compiled shared library, which the suite runs when
  it loads it (``aoti_load_package``). So whoever can write the cache directory (``ZOO_CACHE``) can
  run code as the user who runs the suite: the cache must be writable by that user alone (and by
  those they trust), and ``compression-bench import`` adds no compiled package unless told to
  trust whoever made the archive (``--trust-native-code``);
* an entry proven corrupt (bad checksum, a payload ``torch.load`` cannot read, wrong format or key,
  a blob the caller's ``load`` rejects) is reported with a :class:`CacheWarning`, discarded and
  rebuilt. Nothing else is corruption: an I/O or permission error raises :class:`CacheError`, and
  any other error while loading (out of memory) is raised again with the entry's path; either way
  the entry, which may have taken hours to build, is left alone;
* the first lookup takes no lock: it only returns an intact entry and never deletes one; an entry
  that looked corrupt is looked at again, and discarded, under the entry's lock.
"""
from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import pickle
import tempfile
import time
import warnings
import zipfile
from pathlib import Path
from typing import Any, Callable

import torch
from filelock import FileLock, Timeout


FORMAT_VERSION = 2
MAGIC = b"compression-bench cache entry v2\n"  # then the SHA-256 of the payload in hex, a newline, the payload


class CacheError(RuntimeError):
    """The cache cannot be used: not writable, full, or an entry cannot be read (I/O, permissions)."""


class CacheWarning(UserWarning):
    """A cache entry was corrupt or stale and has been discarded."""


class CorruptEntry(ValueError):
    """An entry's bytes are not a valid entry of this format (checksum, truncation, layout)."""


def default_cache_dir() -> Path:
    env = os.environ.get("ZOO_CACHE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "compression-bench"


def hash_parts(parts: dict[str, Any]) -> str:
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


# ---------------------------------------------------------------- the entry file format

def encode_entry(blob: dict) -> bytes:
    buf = io.BytesIO()
    torch.save(blob, buf)
    payload = buf.getvalue()
    return MAGIC + hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload


def decode_entry(data: bytes) -> dict:
    """The blob stored in ``data``; :class:`CorruptEntry` when the bytes are not an intact entry."""
    if not data.startswith(MAGIC):
        raise CorruptEntry("not a cache entry of this format (no header)")
    head = len(MAGIC)
    digest, payload = data[head:head + 64], data[head + 65:]
    if data[head + 64:head + 65] != b"\n" or hashlib.sha256(payload).hexdigest().encode() != digest:
        raise CorruptEntry("checksum mismatch: the file changed after it was written")
    try:
        blob = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except Exception as err:
        if not _unloadable(err):  # out of memory, an allocator's failure: nothing wrong with the bytes
            raise
        raise CorruptEntry(f"{type(err).__name__}: {_first_line(err)}") from None
    if not isinstance(blob, dict):
        raise CorruptEntry("not a cache entry")
    return blob


def _unloadable(err: BaseException) -> bool:
    """Whether ``torch.load``'s error proves that the bytes are no checkpoint it can read: a pickle it
    refuses (weights_only), a zip archive cut short or not one (``PytorchStreamReader failed ...``),
    bytes that end early or do not decode. Anything else (running out of memory, a failing allocator)
    says nothing about the entry."""
    if isinstance(err, (pickle.UnpicklingError, EOFError, zipfile.BadZipFile, UnicodeDecodeError)):
        return True
    return isinstance(err, RuntimeError) and str(err).startswith(("PytorchStreamReader failed", "Invalid magic number"))


def _unusable(err: BaseException) -> bool:
    """Whether the caller's ``load`` proves an intact entry unusable by this code: ``ValueError`` (a
    variant of another format or method), ``KeyError`` or ``TypeError`` (a blob of another layout),
    or weights that do not fit the model (``load_state_dict``'s ``RuntimeError``)."""
    if isinstance(err, (ValueError, KeyError, TypeError)):
        return True
    return isinstance(err, RuntimeError) and str(err).startswith("Error(s) in loading state_dict")


def _kept(err: Exception, path: Path) -> Exception:
    """``err`` again (same type, so callers that handle it still do), its message naming the entry it
    came from: a transient error is not corruption, and the entry was kept."""
    first, _, rest = str(err).partition("\n")  # the path on the first line, which rows and logs show
    text = (f"{first or type(err).__name__} (while loading cache entry {path}, which was left in place: this error "
            f"does not show that it is damaged; run again once its cause is fixed)" + (f"\n{rest}" if rest else ""))
    try:
        again = type(err)(text)
    except Exception:  # noqa: BLE001 - an exception type that takes other arguments
        again = None
    if again is None or str(again) != text:
        err.add_note(text)
        return err
    return again


def _first_line(err: BaseException) -> str:
    text = str(err)
    return text.splitlines()[0][:200] if text else ""


def _io_error(action: str, path: Path, err: OSError) -> CacheError:
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        return CacheError(f"the disk under the cache is full: could not {action} {path} (no space left); "
                          f"free some space or point ZOO_CACHE or --zoo-cache at another disk.")
    return CacheError(f"could not {action} cache entry {path} ({err.strerror or err}); it was left in place: "
                      f"fix the permissions or the disk and run again, or point ZOO_CACHE or --zoo-cache elsewhere.")


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

    def _load(self, path: Path, key: str, locked: bool) -> dict | None:
        """The entry's blob; None if absent or corrupt (discarded only when ``locked``)."""
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as err:
            raise _io_error("read", path, err) from None
        try:
            blob = decode_entry(data)
            if blob.get("format") != FORMAT_VERSION or blob.get("key") != key:
                raise CorruptEntry(f"written by another version (format {blob.get('format')!r})")
        except CorruptEntry as err:
            if locked:
                self._discard(path, str(err))
            return None
        except Exception as err:
            raise _kept(err, path) from err
        return blob

    def _save(self, path: Path, blob: dict) -> None:
        try:
            write_atomic(path, encode_entry(blob))
        except OSError as err:
            raise _io_error("write", path, err) from None

    def _log_build(self, path: Path, seconds: float) -> None:
        """One line per artifact built, in ``<cache>/builds.log``: an audit trail that shows how
        often each entry was built, whichever process built it."""
        line = f"{time.strftime('%Y-%m-%dT%H:%M:%S')}\t{os.getpid()}\t{path.relative_to(self.root)}\t{seconds:.1f}s\n"
        try:
            with open(self.root / "builds.log", "a") as f:
                f.write(line)
        except OSError as err:
            raise _io_error("append to", self.root / "builds.log", err) from None

    def _discard(self, path: Path, why: str) -> None:
        warnings.warn(CacheWarning(f"discarding unreadable cache entry {path} ({why}); rebuilding it"),
                      stacklevel=4)
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        except OSError as err:
            raise _io_error("remove corrupt", path, err) from None

    def _cached(self, path: Path, key: str, load: Callable[[dict], Any], *, locked: bool) -> tuple[bool, Any]:
        """(True, loaded) for a usable entry; (False, None) if absent, corrupt or unusable. Only a
        lookup under the entry's lock discards: without it, another process may be replacing the
        entry, and what looked corrupt is looked at again under the lock. An error that proves
        nothing about the entry (out of memory) goes on, naming the entry, which is kept."""
        blob = self._load(path, key, locked)
        if blob is None:
            return False, None
        try:
            return True, load(blob)
        except Exception as err:
            if not _unusable(err):
                raise _kept(err, path) from err
            if locked:  # stored, but not usable by this code
                self._discard(path, f"{type(err).__name__}: {_first_line(err)}")
            return False, None

    def get_or_build(self, kind: str, name: str, parts: dict[str, Any],
                     build: Callable[[], dict], *, on_wait: Callable[[], None] | None = None,
                     load: Callable[[dict], Any] | None = None) -> tuple[Any, bool]:
        """Return ``(entry, built)``: the cached entry for ``parts``, building it if needed.

        ``build()`` returns a dict of tensors and plain values (``weights_only``-loadable).
        ``load(blob)``, if given, turns the blob into what the caller wants and is returned
        instead of it; when it raises ``ValueError`` (or ``KeyError``, ``TypeError``, or the
        ``RuntimeError`` of ``load_state_dict`` for weights that do not fit) on a stored entry,
        that entry is treated as unreadable: reported, discarded and rebuilt. Any other error of
        ``load`` or ``torch.load`` (out of memory) is raised again with the entry's path, and the
        entry is kept. Raises :class:`CacheError` when the cache cannot be read or written.
        """
        load = load or (lambda blob: blob)
        key = hash_parts(parts)
        path = self.path(kind, name, key)
        ok, entry = self._cached(path, key, load, locked=False)
        if ok:
            return entry, False
        self.check_writable()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise _io_error("create the folder of", path, err) from None
        lock = FileLock(str(path) + ".lock", timeout=self.lock_timeout)
        try:
            lock.acquire(timeout=0)
        except Timeout:  # another process is building this entry: wait for it
            if on_wait is not None:
                on_wait()
            lock.acquire()
        try:
            ok, entry = self._cached(path, key, load, locked=True)  # built by another process while we waited
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


def _remove(path: str | None) -> None:
    if path is None:
        return
    try:
        os.unlink(path)
    except OSError:
        pass


def write_atomic(path: str | os.PathLike, data: bytes | str) -> None:
    """Write ``data`` (text as UTF-8) to a temporary file beside ``path``, flush it to disk, then
    rename it over ``path``: a failure (a full disk, a kill) leaves the previous file, never a
    truncated one. The project's one atomic write (cache entries, report files)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise


def read_entry(path: str | os.PathLike) -> dict:
    """The blob of a cache entry file (checksum verified): for inspection and tests."""
    return decode_entry(Path(path).read_bytes())


def write_entry(path: str | os.PathLike, blob: dict) -> None:
    """Write ``blob`` as a cache entry file with a fresh checksum (not atomic): for tests and tools."""
    Path(path).write_bytes(encode_entry(blob))
