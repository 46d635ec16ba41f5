"""A worker process that docks ligands against one prepared receptor with AutoDock Vina.

Computing a receptor's Vina maps takes seconds (about 8 s for PARP1 on one core) and docking a small
ligand well under a second, so the maps are computed once per worker and reused. A worker is a fresh
Python interpreter started with `subprocess` (fork + exec, never a bare fork of the caller, so locks
held by the caller's other threads cannot be inherited), running this file as a script: it imports
only the standard library, RDKit, meeko and vina (not svdd, not torch). It

1. computes the maps of one (target, seed) once and says "ready";
2. for each request, forks a short-lived child that inherits the maps, prepares the ligand (RDKit
   ETKDG + MMFF, meeko) and docks it. The worker is single-threaded (its environment caps every
   thread pool at one thread), so this fork is safe. The worker kills the child at the request's
   deadline, so the worker stays responsive and a timed-out ligand costs no new receptor
   preparation. Every child starts from the same state, so a ligand's score does not depend on
   what the worker docked before. The fork costs about 0.1 s per ligand (the worker holds about
   0.6 GB, 0.4 GB of it maps), against 0.4 s for docking benzene and 2-15 s for a MOSES molecule
   at exhaustiveness 1; the caller no longer holds the maps at all.

Lifetimes: on Linux the worker and each child ask the kernel (prctl PR_SET_PDEATHSIG) to SIGKILL
them when their parent exits, and then check that the parent is still there; the worker also exits
when its request pipe closes, killing a running child first. The kernel ties the death signal to the
parent *thread*: a worker started by a thread that later exits is killed with it, and `VinaWorker`
starts a new one on the next request. Elsewhere only the pipe check applies.

`VinaWorker` is the caller's side: one request at a time (a lock), with a deadline that covers the
worker's start and receptor preparation.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import itertools
import math
import os
import signal
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
GRACE_S = 0.5  # how long past a deadline the caller waits for the worker's own "timeout" answer
_THREAD_CAPS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")


class DockingError(RuntimeError):
    """Docking gave no answer for a reason that may not recur (the worker died or failed to start)."""


class DockingTimeout(DockingError):
    """The deadline passed before docking finished (worker start and receptor preparation included)."""


# -- receptor and ligand --------------------------------------------------------------------------


def _targets_folder() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("dockstring")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("the docking targets come from the dockstring wheel: pip install dockstring")
    return Path(next(iter(spec.submodule_search_locations))) / "resources" / "targets"


def target_names() -> list[str]:
    """The DOCKSTRING targets shipped in the dockstring wheel ("ABL1", ..., "PARP1", ...), sorted."""
    return sorted(p.name[: -len("_target.pdbqt")] for p in _targets_folder().glob("*_target.pdbqt"))


def target_files(target: str) -> tuple[Path, dict[str, float]]:
    """(receptor PDBQT path, box {center_x, ..., size_z} in Å) of a DOCKSTRING target, e.g. "PARP1"."""
    folder = _targets_folder()
    receptor, conf = folder / f"{target}_target.pdbqt", folder / f"{target}_conf.txt"
    if not isinstance(target, str) or "/" in target or not receptor.exists():
        raise ValueError(f"unknown docking target {target!r}; dockstring ships: {', '.join(target_names())}")
    box = {}
    for line in conf.read_text().splitlines():
        key, _, value = line.partition("=")
        if value.strip():
            box[key.strip()] = float(value)
    return receptor, box


def ligand_pdbqt(smiles: str, seed: int) -> str | None:
    """PDBQT text of one ligand (RDKit + hydrogens, ETKDG conformer with `seed`, MMFF, meeko), or None."""
    from meeko import MoleculePreparation, PDBQTWriterLegacy
    from rdkit import Chem
    from rdkit.Chem import AllChem

    mol = Chem.MolFromSmiles(smiles)
    if mol is None or mol.GetNumAtoms() == 0:
        return None
    mol = Chem.AddHs(mol)
    params = AllChem.ETKDGv3()
    params.randomSeed = seed
    if AllChem.EmbedMolecule(mol, params) != 0:
        return None
    with contextlib.suppress(Exception):  # no MMFF parameters: dock the ETKDG conformer as it is
        AllChem.MMFFOptimizeMolecule(mol, maxIters=500)
    setups = MoleculePreparation().prepare(mol)
    text, ok, _ = PDBQTWriterLegacy.write_string(setups[0])
    return text if ok else None


def prepare_receptor(target: str, seed: int) -> Any:
    """A `vina.Vina` (one CPU, `seed`) holding the receptor and the maps of its DOCKSTRING box."""
    from vina import Vina

    receptor, box = target_files(target)
    v = Vina(sf_name="vina", cpu=1, seed=seed, verbosity=0)
    v.set_receptor(str(receptor))
    v.compute_vina_maps(
        center=[box["center_x"], box["center_y"], box["center_z"]],
        box_size=[box["size_x"], box["size_y"], box["size_z"]],
    )
    return v


def dock_here(vina: Any, smiles: str, exhaustiveness: int, seed: int) -> tuple[str, Any]:
    """Dock one ligand in this process: ("ok", best energy in kcal/mol) or ("invalid", reason)."""
    try:
        pdbqt = ligand_pdbqt(smiles, seed)
        if pdbqt is None:
            return "invalid", "ligand preparation failed"
        vina.set_ligand_from_string(pdbqt)
        vina.dock(exhaustiveness=exhaustiveness, n_poses=1)
        return "ok", float(vina.energies(n_poses=1)[0][0])
    except Exception as exc:
        return "invalid", f"{type(exc).__name__}: {exc}"


# -- the worker's side ----------------------------------------------------------------------------


def die_with_parent(parent_pid: int) -> None:
    """Linux: have the kernel SIGKILL this process when its parent exits. Exit now if it already has."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:
        os._exit(1)


def _kill_and_reap(pid: int) -> int:
    """SIGKILL child `pid` (a no-op if it has exited) and reap it; its wait status."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    return os.waitpid(pid, 0)[1]


def _dock_in_child(
    vina: Any, request: tuple, requests: Connection, replies: Connection, pending: collections.deque
) -> tuple[str, Any]:
    """Fork a child that docks `request`'s ligand; kill it at the deadline. Queues requests that arrive."""
    _, smiles, exhaustiveness, seed, deadline = request
    if deadline is not None and deadline <= time.monotonic():
        return "timeout", None
    read_fd, write_fd = os.pipe()
    worker_pid = os.getpid()
    pid = os.fork()
    if pid == 0:  # the child: dock, send the answer, exit without running the worker's cleanup
        code = 1
        try:
            os.close(read_fd)
            die_with_parent(worker_pid)
            os.close(requests.fileno())  # so that the caller sees EOF as soon as the worker is gone
            os.close(replies.fileno())
            Connection(write_fd, readable=False).send(dock_here(vina, smiles, exhaustiveness, seed))
            code = 0
        finally:
            os._exit(code)
    os.close(write_fd)
    result = Connection(read_fd, writable=False)
    try:
        while True:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return "timeout", None
            ready = wait([result, requests], remaining)
            if result in ready:
                try:
                    return result.recv()
                except EOFError:
                    status = _kill_and_reap(pid)
                    pid = 0
                    return "crashed", f"the docking child ended without an answer (wait status {status})"
            if requests in ready:
                try:
                    pending.append(requests.recv())
                except EOFError:  # the caller is gone
                    raise SystemExit(0) from None
    finally:
        if pid:
            _kill_and_reap(pid)
        result.close()


def serve(target: str, seed: int, requests: Connection, replies: Connection) -> None:
    """Prepare the receptor, say ("ready", seconds, info), then answer (id, status, value) per request."""
    start = time.perf_counter()
    try:
        import meeko  # noqa: F401  (imported once here, not in every child)
        from rdkit import RDLogger
        from rdkit.Chem import AllChem  # noqa: F401

        RDLogger.DisableLog("rdApp.*")
        vina = prepare_receptor(target, seed)
    except Exception as exc:
        replies.send(("setup failed", f"{type(exc).__name__}: {exc}"))
        return
    threads = len(os.listdir("/proc/self/task")) if os.path.isdir("/proc/self/task") else None
    replies.send(("ready", time.perf_counter() - start, {"threads": threads, "pid": os.getpid()}))
    pending: collections.deque = collections.deque()
    while True:
        if not pending:
            try:
                pending.append(requests.recv())
            except EOFError:
                return
        request = pending.popleft()
        status, value = _dock_in_child(vina, request, requests, replies, pending)
        replies.send((request[0], status, value))


def main(argv: list[str]) -> None:
    target, seed, parent_pid, requests_fd, replies_fd = argv[0], int(argv[1]), int(argv[2]), int(argv[3]), int(argv[4])
    die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the caller's to handle; it then closes the pipe
    here = os.path.dirname(os.path.abspath(__file__))  # this folder's modules must not shadow real ones
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    serve(target, seed, Connection(requests_fd, writable=False), Connection(replies_fd, readable=False))


# -- the caller's side ----------------------------------------------------------------------------


class VinaWorker:
    """The caller's handle on one worker process for (target, seed), started on first use.

    `dock` sends one ligand at a time (a lock serialises threads). A worker that died is replaced
    on the next request. `close` ends the worker; `ready_info` holds what it reported when ready
    (seconds spent preparing, its thread count and pid).
    """

    def __init__(self, target: str, seed: int) -> None:
        self.target, self.seed = target, seed
        self.owner_pid = os.getpid()
        self.ready_info: dict[str, Any] | None = None
        self._lock = threading.Lock()
        self._ids = itertools.count()
        self._proc: subprocess.Popen | None = None
        self._requests: Connection | None = None
        self._replies: Connection | None = None

    @property
    def pid(self) -> int | None:
        """The worker's process id while it runs, else None."""
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def _start(self) -> None:
        if not sys.executable:
            raise DockingError("cannot start a docking worker: sys.executable is empty")
        requests_read, requests_write = os.pipe()
        replies_read, replies_write = os.pipe()
        # A single-threaded worker forks safely: cap the thread pools, and keep the jemalloc bundled with
        # pyarrow (imported by meeko via pandas) from starting its background thread.
        env = dict(os.environ, **{name: "1" for name in _THREAD_CAPS})
        env.setdefault("JE_ARROW_MALLOC_CONF", "background_thread:false")
        try:
            self._proc = subprocess.Popen(
                [
                    sys.executable,
                    os.path.abspath(__file__),
                    self.target,
                    str(self.seed),
                    str(os.getpid()),
                    str(requests_read),
                    str(replies_write),
                ],
                pass_fds=(requests_read, replies_write),
                stdin=subprocess.DEVNULL,
                env=env,
            )
        except OSError as exc:
            raise DockingError(f"cannot start a docking worker: {exc}") from exc
        finally:
            os.close(requests_read)
            os.close(replies_write)
        self._requests = Connection(requests_write, readable=False)
        self._replies = Connection(replies_read, writable=False)
        self.ready_info = None

    def close(self) -> None:
        """End the worker (if any) and release its pipes; the next `dock` starts a new one."""
        with self._lock:
            self.close_now()

    def close_now(self) -> None:
        """`close` without waiting for a `dock` in progress (at interpreter exit)."""
        for conn in (self._requests, self._replies):
            if conn is not None:
                conn.close()
        self._requests = self._replies = None
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.kill()
            self._proc.wait()
            self._proc = None
        self.ready_info = None

    def forget(self) -> None:
        """In a forked copy of the caller: drop this copy of the handles (the worker is the parent's)."""
        for conn in (self._requests, self._replies):
            if conn is not None:
                conn.close()  # this process's copies of the pipe ends only
        self._proc = self._requests = self._replies = None
        self.ready_info = None
        self.owner_pid = os.getpid()
        self._lock = threading.Lock()  # another thread of the parent may have held it at the fork

    def _next_message(self, until: float | None) -> tuple | None:
        """The worker's next message, or None if nothing came by monotonic time `until`."""
        assert self._replies is not None
        wait_s = None if until is None else max(0.0, until - time.monotonic())
        if not self._replies.poll(wait_s):
            return None
        try:
            return self._replies.recv()
        except EOFError:
            code = self._proc.wait() if self._proc is not None else None
            self.close_now()
            raise DockingError(f"the docking worker for {self.target} exited (code {code})") from None

    def dock(self, smiles: str, exhaustiveness: int, timeout_s: float | None) -> float:
        """Best Vina energy (kcal/mol, lower = better) of a parseable SMILES; NaN if it cannot be
        prepared or docked. Raises `DockingTimeout` when `timeout_s` (None: no limit) passes first,
        counting from when this call gets the worker, and `DockingError` when the worker dies."""
        with self._lock:
            if self.owner_pid != os.getpid():  # a forked copy of the caller: the worker is not ours to use
                self.forget()
            if self._proc is not None and self._proc.poll() is not None:
                self.close_now()
            deadline = None if timeout_s is None else time.monotonic() + timeout_s
            try:
                if self._proc is None:
                    self._start()
                while self.ready_info is None:  # first the worker's start and receptor preparation
                    message = self._next_message(deadline)
                    if message is None:
                        raise DockingTimeout(f"the docking worker for {self.target} was not ready within {timeout_s} s")
                    if message[0] == "setup failed":
                        self.close_now()
                        raise DockingError(f"the docking worker for {self.target} failed to start: {message[1]}")
                    if message[0] == "ready":
                        self.ready_info = {"prep_seconds": message[1], **message[2]}
                request_id = next(self._ids)
                assert self._requests is not None
                try:
                    self._requests.send((request_id, smiles, exhaustiveness, self.seed, deadline))
                except OSError:
                    self.close_now()
                    raise DockingError(f"the docking worker for {self.target} is gone") from None
                while True:
                    message = self._next_message(None if deadline is None else deadline + GRACE_S)
                    if message is None or (message[0] == request_id and message[1] == "timeout"):
                        raise DockingTimeout(f"docking {smiles!r} took more than {timeout_s} s")
                    if message[0] != request_id:
                        continue  # the late answer to an earlier request that timed out here
                    status, value = message[1], message[2]
                    if status == "ok":
                        return float(value)
                    if status == "invalid":
                        return math.nan
                    raise DockingError(f"docking {smiles!r}: {value}")
            except DockingError:
                raise
            except BaseException:  # e.g. KeyboardInterrupt: the worker may still be busy with this ligand
                self.close_now()
                raise


if __name__ == "__main__":
    main(sys.argv[1:])
