"""Moving prepared artifacts between machines: a cache exported to one archive, and imported into
another machine's cache after every entry is verified. No pytest.

Train and compress where there is a GPU, time on the CPUs you deploy to: ``compression-bench export``
writes the cache entries (trained models, variants, their metrics, runtime artifacts and peak-memory
measurements) to a tar archive with a manifest of SHA-256 checksums and the exporting machine's
identity; ``compression-bench import`` checks the whole archive first (every member listed, every
checksum right, every entry an intact cache entry, no path outside the cache) and adds nothing if
one check fails. Entries are found on the importing machine by the same keys, so a warm run there
builds nothing that was imported.

Entries built for one instruction set (compiled Inductor packages, ONNX Runtime INT8 files whose format
follows the capability class: their keys carry ``cpu_capability`` or ``int8_format``) are left out when
the importing machine's key differs from the exporting one's: the importing machine rebuilds them
for its own CPU.

The checks prove an archive intact, not who made it: its checksums are in the manifest beside them,
and its machine key is a hash of facts that every report and MLflow tag prints. Every entry but one
kind is data (``torch.load(weights_only=True)``); a compiled Inductor package is a shared library
that runs in the suite's process when it is loaded. So packages are never imported unless the user
trusts whoever made the archive and says so (``trust_native_code``, ``--trust-native-code``),
whatever the machine key says; the suite rebuilds the missing ones here.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tarfile
import tempfile
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Callable, Iterable

from compression_bench.zoo.cache import CorruptEntry, decode_entry, write_atomic

ARCHIVE_FORMAT = 1
MANIFEST = "MANIFEST.json"
#: keys in an entry's parts that make it specific to the CPU that built it
MACHINE_MARKERS = ("cpu_capability", "int8_format")
#: runtimes whose artifacts are compiled native code, loaded into the suite's process
NATIVE_RUNTIMES = ("inductor",)
#: the path of such an artifact in the cache: ``runtime/<model>-<method>-<runtime>[-bs<n>]-<key>.pt``
_NATIVE_PATH = re.compile(rf"^runtime/[^/]+-(?:{'|'.join(map(re.escape, NATIVE_RUNTIMES))})(?:-bs\d+)?-[^-/]+\.pt$")


class TransferError(ValueError):
    """An archive cannot be written or imported; one sentence, and nothing was added."""


class TransferIOError(TransferError):
    """A file of the cache or the archive cannot be read or written (permissions, the disk): one
    sentence naming it; the command exits 7, as a run does when its cache fails it."""


@dataclass
class Transfer:
    """What an export or import did: entries by kind, entries left out and why, the archive's machine."""
    archive: Path
    machine: dict = field(default_factory=dict)
    entries: dict[str, int] = field(default_factory=dict)
    bytes: int = 0
    present: int = 0
    left_out: list[str] = field(default_factory=list)
    native_skipped: list[str] = field(default_factory=list)  # compiled packages not imported: not trusted

    def sentence(self, verb: str) -> str:
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(self.entries.items())) or "no entries"
        extra = f"; {self.present} already there" if self.present else ""
        extra += f"; {len(self.left_out)} left out ({self.left_out[0]}{', ...' if len(self.left_out) > 1 else ''})" \
            if self.left_out else ""
        return f"{verb} {sum(self.entries.values())} entries ({kinds}; {self.bytes / 2**20:.1f} MiB){extra}"


def machine_specific(parts) -> bool:
    """Whether an entry's key parts tie it to the instruction set of the machine that built it."""
    if isinstance(parts, dict):
        return any(k in MACHINE_MARKERS or machine_specific(v) for k, v in parts.items())
    if isinstance(parts, list):
        return any(machine_specific(v) for v in parts)
    return False


def native_code(name: str, parts) -> bool:
    """Whether the archive member ``name`` holds compiled native code: an Inductor package. Decided
    by its path, which is what makes the suite load it as one (the cache finds an entry by kind, name
    and key, never by the parts stored in it), and by its key parts, whichever says so."""
    return bool(_NATIVE_PATH.match(name)) or (isinstance(parts, dict) and parts.get("runtime") in NATIVE_RUNTIMES)


def _entries(root: Path, models: Iterable[str] | None) -> list[Path]:
    wanted = tuple(f"{m}-" for m in models) if models else None
    out = []
    for kind in sorted(p for p in root.iterdir() if p.is_dir()):
        for f in sorted(kind.glob("*.pt")):
            if wanted is None or f.name.startswith(wanted):
                out.append(f)
    return out


def export_cache(root: str | Path, archive: str | Path, *, machine: dict, models: Iterable[str] | None = None,
                 say: Callable[[str], None] | None = None) -> Transfer:
    """Write the entries of the cache at ``root`` (those of ``models`` when given) to ``archive`` (a tar
    file; compressed when its name ends in .gz), with a manifest; ``machine``: this machine's identity
    (:func:`benchmarks.measurement.machine.identify`)."""
    root, archive = Path(root), Path(archive)
    if not root.is_dir():
        raise TransferError(f"there is no cache at {root} to export (choose one with --cache or ZOO_CACHE).")
    files = _entries(root, models)
    if not files:
        which = f" for {', '.join(models)}" if models else ""
        raise TransferError(f"the cache at {root} has no entries{which} to export.")
    out = Transfer(archive, machine)
    manifest = {"format": ARCHIVE_FORMAT, "created": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
                "machine": machine, "entries": []}
    try:
        archive.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=archive.parent, prefix=f".{archive.name}.", suffix=".tmp")
    except OSError as err:
        raise _cannot_write(archive, err) from None
    try:  # one entry in memory at a time; the manifest goes last, once every checksum is known
        with os.fdopen(fd, "wb") as f, tarfile.open(fileobj=f, mode="w:gz" if archive.name.endswith(".gz") else "w") as tar:
            for i, path in enumerate(files):
                try:
                    data = path.read_bytes()
                except OSError as err:  # the cache's fault, not the archive's
                    raise TransferIOError(f"cannot read cache entry {path} ({err.strerror or err}); nothing was "
                                          f"exported: fix its permissions or the disk, or delete the entry (it is "
                                          f"rebuilt on first use), and export again.") from None
                try:
                    parts = decode_entry(data).get("parts", {})
                except CorruptEntry as err:  # not exported: the archive holds only what would load
                    out.left_out.append(f"{path.relative_to(root)}: {err}")
                    continue
                rel = path.relative_to(root).as_posix()
                manifest["entries"].append({"path": rel, "sha256": hashlib.sha256(data).hexdigest(),
                                            "bytes": len(data), "machine_specific": machine_specific(parts)})
                _add(tar, rel, data)
                kind = rel.split("/", 1)[0]
                out.entries[kind] = out.entries.get(kind, 0) + 1
                out.bytes += len(data)
                if say and (i + 1) % 25 == 0:
                    say(f"  read {i + 1} of {len(files)} entries")
            _add(tar, MANIFEST, json.dumps(manifest, indent=1).encode())
        os.replace(tmp, archive)
    except OSError as err:
        raise _cannot_write(archive, err) from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out


def _cannot_write(archive: Path, err: OSError) -> TransferIOError:
    return TransferIOError(f"cannot write {archive} ({err.strerror or err}); nothing was exported: free some space "
                           f"or fix the permissions, or write the archive elsewhere.")


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), int(time.time()), 0o644
    tar.addfile(info, io.BytesIO(data))


def _members(archive: Path):
    """(name, bytes) of each member of ``archive``, one at a time; :class:`TransferError` (nothing was
    imported) for an unreadable or damaged archive or a member that is not a plain file inside the cache."""
    try:
        tar = tarfile.open(archive, mode="r:*")
    except FileNotFoundError:
        raise TransferError(f"there is no archive {archive}.") from None
    except (tarfile.TarError, OSError, EOFError) as err:
        raise TransferError(f"{archive} is not a readable export archive ({err}); nothing was imported.") from None
    with tar:
        try:
            for m in tar:
                path = PurePosixPath(m.name)
                if not m.isfile() or path.is_absolute() or ".." in path.parts:
                    raise TransferError(f"{archive} holds {m.name!r}, which is not a plain file inside the cache; "
                                        f"nothing was imported.")
                f = tar.extractfile(m)
                yield m.name, f.read() if f is not None else b""
        except (tarfile.TarError, OSError, EOFError, zlib.error) as err:
            raise TransferError(f"{archive} is damaged ({type(err).__name__}: {err}); nothing was imported.") from None


def _verify(archive: Path) -> tuple[dict, dict[str, dict], set[str]]:
    """The manifest of ``archive``, its entries by path and the paths of its compiled packages
    (:func:`native_code`), after every member was read once and checked against it (one member
    in memory at a time); :class:`TransferError` at the first problem."""
    digests, manifest, native = {}, None, set()
    for name, data in _members(archive):
        if name == MANIFEST:
            try:
                manifest = json.loads(data)
            except (json.JSONDecodeError, UnicodeDecodeError) as err:
                raise TransferError(f"the manifest of {archive} is damaged ({err}); nothing was imported.") from None
            continue
        try:
            blob = decode_entry(data)
        except CorruptEntry as err:
            raise TransferError(f"{name} in {archive} is not an intact cache entry ({err}); nothing was imported.") from None
        if native_code(name, blob.get("parts")):
            native.add(name)
        digests[name] = hashlib.sha256(data).hexdigest()
    if manifest is None:
        raise TransferError(f"{archive} has no {MANIFEST}: it was not written by compression-bench export; nothing "
                            f"was imported.")
    if not isinstance(manifest, dict) or manifest.get("format") != ARCHIVE_FORMAT:
        raise TransferError(f"{archive} is an export archive of another format "
                            f"({manifest.get('format') if isinstance(manifest, dict) else '?'!r}); nothing was imported.")
    listed = {e.get("path"): e for e in manifest.get("entries") or [] if isinstance(e, dict)}
    extra, missing = sorted(set(digests) - set(listed)), sorted(set(listed) - set(digests))
    if extra or missing:
        what = f"{extra[0]!r} is not in its manifest" if extra else f"{missing[0]!r} is listed but missing"
        raise TransferError(f"{archive} does not match its manifest ({what}); nothing was imported.")
    for name, digest in digests.items():
        if digest != listed[name].get("sha256"):
            raise TransferError(f"{name} in {archive} does not match its checksum (the archive was changed or "
                                f"damaged); nothing was imported.")
    return manifest, listed, native


def import_archive(archive: str | Path, root: str | Path, *, machine: dict,
                   trust_native_code: bool = False) -> Transfer:
    """Verify ``archive`` whole, then add its entries to the cache at ``root``. Entries built for another
    machine's instruction set are left out when ``machine`` (this machine's identity) has another key
    than the exporting machine. Compiled packages (:func:`native_code`) are skipped unless
    ``trust_native_code``: the archive cannot prove who made them, and they run when loaded.
    Raises :class:`TransferError` (nothing added) when any check fails, :class:`TransferIOError`
    when a file of the cache cannot be read or written (the entries before it were added).
    The archive is read twice, one entry in memory at a time: a cache of gigabytes needs no more."""
    archive, root = Path(archive), Path(root)
    manifest, listed, native = _verify(archive)
    source = (manifest.get("machine") or {}).get("key")
    other_machine = source != machine.get("key")
    out = Transfer(archive, manifest.get("machine") or {})
    for name, data in _members(archive):
        if name == MANIFEST:
            continue
        entry = listed[name]
        if hashlib.sha256(data).hexdigest() != entry["sha256"]:  # changed since the first read
            raise TransferError(f"{name} in {archive} changed while it was imported; the entries before it were "
                                f"added and are complete.")
        if other_machine and entry.get("machine_specific"):
            out.left_out.append(f"{name}: built for {source}, rebuilt here for {machine.get('key')}")
            continue
        if not trust_native_code and name in native:
            out.native_skipped.append(name)
            continue
        dest = root / name
        try:
            if dest.is_file() and hashlib.sha256(dest.read_bytes()).hexdigest() == entry["sha256"]:
                out.present += 1
                continue
        except OSError as err:
            raise TransferIOError(f"cannot read {dest}, already in the cache ({err.strerror or err}): fix its "
                                  f"permissions or delete it, and import again; the entries before it were added "
                                  f"and are complete.") from None
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(dest, data)
        except OSError as err:
            raise TransferIOError(f"cannot write {dest} ({err.strerror or err}): free some space or fix the "
                                  f"permissions, and import again; the entries before it were added and are "
                                  f"complete.") from None
        kind = name.split("/", 1)[0]
        out.entries[kind] = out.entries.get(kind, 0) + 1
        out.bytes += len(data)
    out.left_out.sort()
    out.native_skipped.sort()
    return out
