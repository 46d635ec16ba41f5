"""A run directory shared safely: a lock, shard claims, temporary files and atomic writes.

* **Lock.** A lone run holds an exclusive `flock` on `OUT/.svdd-lock` for its whole life; a
  second run on the same directory is refused with the holder's PID. Cooperating workers (the
  same settings on a cluster, `--cooperate`, or the ranks of `torchrun`/`accelerate launch`)
  hold it shared, so they exclude lone runs but not each other.
* **Claims.** A cooperating worker takes shard k by creating `shards/shard-k.claim` (a
  hard link to a complete temporary file, so a claim is never seen half-written, NFS included;
  created exclusively where the file system has no hard links) before sampling it, and
  deletes it once the shard is written, so no shard is computed twice.
  The holder touches its claim while it works (every `CLAIM_REFRESH_S`). A claim that is
  damaged, whose holder died on this host, or that a holder on another host has not touched
  for `CLAIM_TIMEOUT_S` is taken over; a lone run clears every claim.
* **Temporary files** are named `NAME.tmp-HOST-PID`. A lone run removes every one it finds (no
  one else can be writing); a cooperating worker only those of dead processes on its own host.
* **Atomic writes** (`write_atomic`) go through such a temporary file, fsync and a rename; a
  failed write (a full disk) removes its temporary file and says what could not be written.
  A directory standing where a file of the run goes is damage: it is renamed
  `NAME.damaged-TIME` (kept, never deleted) and the file written in its place.

Locks use `fcntl.flock`, which Linux also applies across hosts on NFSv4 mounts.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path

HOST = socket.gethostname().replace("-", "_")
LOCK_FILE = ".svdd-lock"
HOLDERS_DIR = ".svdd-holders"
FINALIZE_LOCK = ".svdd-finalize-lock"
CLAIM_REFRESH_S = 30.0  # a worker touches its claims this often while it samples them
CLAIM_TIMEOUT_S = 900.0  # a claim from another host not touched for this long is its dead worker's


class RunLockedError(RuntimeError):
    """Another run holds the directory."""


class RunWriteError(OSError):
    """A file of the run could not be written (disk full, permissions); nothing half-written is left."""


def tmp_name(path: Path) -> Path:
    """The temporary file `write_atomic` uses for `path` in this process."""
    return path.with_name(f"{path.name}.tmp-{HOST}-{os.getpid()}")


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write `data` to `path` through a temporary file, fsync and an atomic rename.

    On failure (ENOSPC, EFBIG, EACCES, ...) the temporary file is removed and a `RunWriteError`
    names `path` and the cause; `path` keeps its previous content.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_dir() and not path.is_symlink():
        set_aside(path)
    tmp = tmp_name(path)
    try:
        with open(tmp, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        reason = exc.strerror or str(exc)
        raise RunWriteError(exc.errno or errno.EIO, f"cannot write {path}: {reason}") from None


def set_aside(path: Path) -> Path:
    """Rename a damaged `path` (a directory where a file goes, a file where a directory goes)
    to `NAME.damaged-TIME` next to it, so that the run can write its own there; returns the new name."""
    aside = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
    n = 1
    while aside.exists() or aside.is_symlink():
        n += 1
        aside = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}-{n}")
    path.rename(aside)
    return aside


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _tmp_owner(path: Path) -> tuple[str, int] | None:
    """(host, pid) of a temporary file named by `tmp_name`, else None."""
    _, sep, tail = path.name.rpartition(".tmp-")
    if not sep:
        return None
    host, _, pid = tail.rpartition("-")
    return (host, int(pid)) if pid.isdigit() else None


def stale(host: str, pid: int) -> bool:
    """True when (host, pid) is a dead process on this host."""
    return host == HOST and not _alive(pid)


class RunDirectory:
    """The output directory of one run (see the module docstring)."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.shards = self.root / "shards"
        self._lock_fd: int | None = None
        self.shared = False
        self._refreshed: dict[int, float] = {}  # claimed shard -> when its claim was last refreshed

    # -- the lock -----------------------------------------------------------------------------

    def acquire(self, shared: bool) -> None:
        """Take the directory's lock (shared for cooperating workers), or raise RunLockedError."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd = _open_lock(self.root / LOCK_FILE)
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            holders = self.holders()
            who = ", ".join(f"PID {pid} on {host}" for host, pid in holders) or "another process"
            if shared:
                raise RunLockedError(
                    f"{self.root} is in use by a run that does not cooperate ({who}); wait for it "
                    "to finish or use another --out"
                ) from None
            raise RunLockedError(
                f"{self.root} is in use by another svdd run ({who}); wait for it to finish, use "
                "another --out, or add workers to it with --cooperate (same settings)"
            ) from None
        self._lock_fd, self.shared = fd, shared
        try:
            self._register(shared)
        except BaseException:
            self.release()
            raise

    def _register(self, shared: bool) -> None:
        """Record this process in the holders directory (for the message of a refused run)."""
        holders_dir = self.root / HOLDERS_DIR
        if not holders_dir.is_dir() and (holders_dir.exists() or holders_dir.is_symlink()):
            _remove(holders_dir)  # a file or a broken link in its place: only names are kept there
        holders_dir.mkdir(exist_ok=True)
        for entry in holders_dir.iterdir():  # holders that died without cleaning up
            host, _, pid = entry.name.rpartition("-")
            if not shared or not pid.isdigit() or stale(host, int(pid)):
                _remove(entry)
        (holders_dir / f"{HOST}-{os.getpid()}").touch()

    def release(self) -> None:
        if self._lock_fd is None:
            return
        with contextlib.suppress(OSError):
            (self.root / HOLDERS_DIR / f"{HOST}-{os.getpid()}").unlink()
        fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
        os.close(self._lock_fd)
        self._lock_fd = None

    def holders(self) -> list[tuple[str, int]]:
        """(host, pid) of the processes that hold the lock, as they recorded themselves."""
        found = []
        holders_dir = self.root / HOLDERS_DIR
        if holders_dir.is_dir():
            for entry in holders_dir.iterdir():
                host, _, pid = entry.name.rpartition("-")
                if pid.isdigit() and not stale(host, int(pid)):
                    found.append((host, int(pid)))
        return found

    @contextlib.contextmanager
    def finalizing(self) -> Iterator[None]:
        """One worker at a time among cooperating workers (starting the record, writing the outputs)."""
        fd = _open_lock(self.root / FINALIZE_LOCK)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    # -- claims ---------------------------------------------------------------------------------

    def claim_path(self, k: int) -> Path:
        return self.shards / f"shard-{k:05d}.claim"

    def claim(self, k: int) -> bool:
        """Claim shard k for this process; False when a live worker holds it."""
        path = self.claim_path(k)
        mine = tmp_name(path)
        try:
            self.shards.mkdir(parents=True, exist_ok=True)
            mine.write_text(f"{HOST} {os.getpid()} {time.time():.0f}\n")
        except OSError as exc:
            with contextlib.suppress(OSError):
                mine.unlink()
            reason = exc.strerror or str(exc)
            raise RunWriteError(exc.errno or errno.EIO, f"cannot write the claim {path}: {reason}") from None
        try:
            for _ in range(2):
                try:
                    _link_or_create(mine, path)
                    self._refreshed[k] = time.monotonic()
                    return True
                except FileExistsError:
                    if self.claimed_by_live_worker(k):
                        return False
                    _remove(path)  # damaged, or its holder is gone: take it over
            return False
        finally:
            with contextlib.suppress(OSError):
                mine.unlink()

    def unclaim(self, k: int) -> None:
        self._refreshed.pop(k, None)
        _remove(self.claim_path(k))

    def refresh(self, k: int) -> None:
        """Show that this process still works on its claimed shard k (at most every
        `CLAIM_REFRESH_S`): other hosts cannot see its pid, only the claim's modification time."""
        last = self._refreshed.get(k)
        if last is not None and time.monotonic() - last >= CLAIM_REFRESH_S:
            self._refreshed[k] = time.monotonic()
            with contextlib.suppress(OSError):
                os.utime(self.claim_path(k))

    def claimed_by_live_worker(self, k: int) -> bool:
        """Whether shard k's claim is held by a worker that is alive: it refreshed the claim
        within `CLAIM_TIMEOUT_S` and, on this host, its process exists."""
        path = self.claim_path(k)
        try:
            age = time.time() - path.stat().st_mtime
        except OSError:
            return False  # no claim (or a broken link)
        owner = self._claim_owner(path)
        if owner is None:
            return False
        return age < CLAIM_TIMEOUT_S and not stale(*owner)

    def claim_holder(self, k: int) -> str | None:
        """ "PID p on HOST" of the live worker that holds shard k, else None."""
        owner = self._claim_owner(self.claim_path(k)) if self.claimed_by_live_worker(k) else None
        return None if owner is None else f"PID {owner[1]} on {owner[0]}"

    @staticmethod
    def _claim_owner(path: Path) -> tuple[str, int] | None:
        """(host, pid) written in a claim; None when it is unreadable or garbled (claims are
        written whole, so that is damage, not a claim being written)."""
        try:
            host, pid, *_ = path.read_text().split()
            return host, int(pid)
        except (OSError, ValueError, UnicodeDecodeError):
            return None

    # -- leftovers --------------------------------------------------------------------------------

    def clean_leftovers(self, finished: bool = False) -> int:
        """Remove temporary files (and claims, for a lone run) of writers that are gone; returns
        how many were removed. A lone run (exclusive lock) removes all of them. `finished` (every
        shard is written): claims and progress files are removed too, whoever left them."""
        removed = 0
        patterns = [".*.tmp-*", "*.tmp-*", "shards/*.tmp-*", "samples/*.tmp-*"]
        if not self.shared or finished:
            patterns += ["shards/*.claim", "shards/*.progress"]
        for pattern in patterns:
            for path in self.root.glob(pattern):
                if ".tmp-" in path.name:
                    owner = _tmp_owner(path)
                    if owner is None:
                        continue  # not a name svdd gives its temporary files: someone else's file
                    if self.shared and not stale(*owner):
                        continue  # a live cooperating worker is writing it
                with contextlib.suppress(OSError):
                    _remove(path)
                    removed += 1
        return removed


NO_HARD_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS, errno.EMLINK}


def _link_or_create(src: Path, dst: Path) -> None:
    """Put `src`'s content at `dst`, FileExistsError when `dst` exists. A hard link is atomic
    (the name never exists half-written, NFS included); on a file system without hard links
    (many FUSE mounts: gcsfuse, s3fs) `dst` is created exclusively and written at once."""
    try:
        os.link(src, dst)
        return
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno not in NO_HARD_LINKS:
            raise
    data = src.read_bytes()
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def _remove(path: Path) -> None:
    """Delete a file, link or directory tree; nothing if it is already gone."""
    with contextlib.suppress(FileNotFoundError):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()


def _open_lock(path: Path) -> int:
    """A descriptor of the lock file `path` (created if missing), or RunWriteError naming it."""
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        what = "is a directory" if path.is_dir() else (exc.strerror or str(exc))
        raise RunWriteError(
            exc.errno or errno.EIO, f"cannot open the lock file {path}: {what}; remove it if no svdd run is using it"
        ) from None
