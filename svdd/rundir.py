"""A run directory shared safely: a lock, shard claims, temporary files and atomic writes.

* **Lock.** A lone run holds an exclusive `flock` on `OUT/.svdd-lock` for its whole life; a
  second run on the same directory is refused with the holder's PID. Cooperating workers (the
  same settings on a cluster, `--cooperate`, or the ranks of `torchrun`/`accelerate launch`)
  hold it shared, so they exclude lone runs but not each other.
* **Claims.** A cooperating worker takes shard k by creating `shards/shard-k.claim` with
  O_EXCL before sampling it, and deletes it once the shard is written, so no shard is computed
  twice. A claim whose holder died on this host is taken over; a lone run clears every claim.
* **Temporary files** are named `NAME.tmp-HOST-PID`. A lone run removes every one it finds (no
  one else can be writing); a cooperating worker only those of dead processes on its own host.
* **Atomic writes** (`write_atomic`) go through such a temporary file, fsync and a rename; a
  failed write (a full disk) removes its temporary file and says what could not be written.

Locks use `fcntl.flock`, which Linux also applies across hosts on NFSv4 mounts.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

HOST = socket.gethostname().replace("-", "_")
LOCK_FILE = ".svdd-lock"
HOLDERS_DIR = ".svdd-holders"
FINALIZE_LOCK = ".svdd-finalize-lock"


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

    # -- the lock -----------------------------------------------------------------------------

    def acquire(self, shared: bool) -> None:
        """Take the directory's lock (shared for cooperating workers), or raise RunLockedError."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
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
        holders_dir = self.root / HOLDERS_DIR
        holders_dir.mkdir(exist_ok=True)
        for entry in holders_dir.iterdir():  # holders that died without cleaning up
            host, _, pid = entry.name.rpartition("-")
            if not shared or (pid.isdigit() and stale(host, int(pid))):
                with contextlib.suppress(OSError):
                    entry.unlink()
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
        """One writer of the final outputs at a time among cooperating workers."""
        fd = os.open(self.root / FINALIZE_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
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
        self.shards.mkdir(parents=True, exist_ok=True)
        path = self.claim_path(k)
        for _ in range(2):
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                owner = self._claim_owner(path)
                if owner is not None and stale(*owner):
                    with contextlib.suppress(FileNotFoundError):
                        path.unlink()  # its holder died: take it over
                    continue
                return False
            with os.fdopen(fd, "w") as f:
                f.write(f"{HOST} {os.getpid()} {time.time():.0f}\n")
            return True
        return False

    def unclaim(self, k: int) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.claim_path(k).unlink()

    def claimed_by_live_worker(self, k: int) -> bool:
        path = self.claim_path(k)
        if not path.exists():
            return False
        owner = self._claim_owner(path)
        return owner is None or not stale(*owner)

    @staticmethod
    def _claim_owner(path: Path) -> tuple[str, int] | None:
        try:
            host, pid, *_ = path.read_text().split()
            return host, int(pid)
        except (OSError, ValueError):
            return None  # being written right now, or unreadable: treat as live

    # -- leftovers --------------------------------------------------------------------------------

    def clean_leftovers(self) -> int:
        """Remove temporary files (and claims, for a lone run) of writers that are gone; returns
        how many were removed. A lone run (exclusive lock) removes all of them."""
        removed = 0
        patterns = [".*.tmp-*", "*.tmp-*", "shards/*.tmp-*", "samples/*.tmp-*"]
        if not self.shared:
            patterns += ["shards/*.claim", "shards/*.progress"]
        for pattern in patterns:
            for path in self.root.glob(pattern):
                owner = _tmp_owner(path) if ".tmp-" in path.name else None
                if self.shared and (owner is None or not stale(*owner)):
                    continue
                with contextlib.suppress(OSError):
                    if path.is_dir():
                        import shutil

                        shutil.rmtree(path)
                    else:
                        path.unlink()
                    removed += 1
        return removed
