"""Molecules domain, docking: checked settings, reproducible scores, timeouts, and worker lifetimes."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from svdd.domains.molecules import Docking, docking, vina_score
from svdd.domains.molecules.rewards import MAX_ATOMS

pytest.importorskip("vina", reason="AutoDock Vina (pip install vina) is not installed")
pytest.importorskip("meeko", reason="meeko (pip install meeko scipy gemmi) is not installed")

ASPIRIN = "CC(=O)Oc1ccccc1C(=O)O"
BENZENE = "c1ccccc1"
OLAPARIB = "O=C(c1cc(Cc2n[nH]c(=O)c3ccccc23)ccc1F)N1CCN(C(=O)C2CC2)CC1"
REPO = Path(__file__).resolve().parents[1]
LINUX_PROC = pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="reads the process tree from Linux /proc")


# -- settings ------------------------------------------------------------------------------------


@pytest.mark.parametrize("timeout_s", ["5", math.nan, math.inf, -math.inf, 0, -1.0, True])
def test_bad_timeout_is_a_value_error_naming_it(timeout_s):
    with pytest.raises(ValueError, match=r"timeout_s must be a finite number of seconds > 0, or None.*got"):
        Docking("PARP1", timeout_s=timeout_s)
    with pytest.raises(ValueError, match="timeout_s"):
        vina_score(BENZENE, timeout_s=timeout_s)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"exhaustiveness": 0}, "exhaustiveness must be a positive int"),
        ({"exhaustiveness": 1.5}, "exhaustiveness must be a positive int"),
        ({"exhaustiveness": True}, "exhaustiveness must be a positive int"),
        ({"exhaustiveness": "8"}, "exhaustiveness must be a positive int"),
        ({"seed": -1}, r"seed must be an int in 1..2147483647 \(or 0"),
        ({"seed": 2**31}, "seed must be an int"),
        ({"seed": 1.0}, "seed must be an int"),
        ({"target": "parp1"}, "unknown docking target 'parp1'; dockstring ships: ABL1, .*PARP1"),
        ({"target": "../PARP1"}, "unknown docking target"),
    ],
)
def test_bad_settings_are_value_errors_naming_them(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Docking(**kwargs)


def test_a_target_that_is_not_a_str_is_a_type_error():
    with pytest.raises(TypeError, match=r"target must be a DOCKSTRING target name \(str\); got 5"):
        Docking(5)


def test_settings_record_what_decides_a_score():
    reward = Docking("DRD2", exhaustiveness=2, timeout_s=np.float64(30))
    assert reward.name == "Docking(DRD2, exhaustiveness=2, seed=1)"  # the default seed is fixed, not Vina's 0
    settings = reward.settings
    assert settings["seed"] == docking.DEFAULT_SEED == 1 and settings["timeout_s"] == 30.0
    assert settings["target"] == "DRD2" and settings["exhaustiveness"] == 2 and settings["max_atoms"] == MAX_ATOMS
    assert settings["versions"]["vina"] and settings["versions"]["dockstring"]
    json.dumps(settings)  # storable in a run record
    assert Docking(seed=0).name.endswith("seed=random)")
    reward.timeout_s = None  # no limit
    assert reward.timeout_s is None and reward._dock_fn.timeout_s is None
    with pytest.raises(ValueError, match="timeout_s"):
        reward.timeout_s = "120"
    assert "PARP1" in docking.target_names() and len(docking.target_names()) == 58


def test_oversized_molecule_scores_nan_without_docking():
    start = time.perf_counter()
    assert math.isnan(vina_score("C" * (MAX_ATOMS + 1), timeout_s=30))
    assert math.isnan(vina_score("C" * 200_000, timeout_s=30))
    assert time.perf_counter() - start < 5  # parsed and rejected, never sent to a worker (about 1 s)


# -- scores ----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_two_processes_give_identical_scores_whatever_was_docked_before():
    script = textwrap.dedent(f"""
        import json
        from svdd.domains.molecules import Docking
        reward = Docking("PARP1", timeout_s=120)
        print(json.dumps([float(s) for s in reward([{ASPIRIN!r}, "CCO", {BENZENE!r}])]))
    """)
    other = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=dict(os.environ, OMP_NUM_THREADS="1"),
    )
    here = Docking("PARP1", timeout_s=120)([BENZENE, ASPIRIN])  # meanwhile, in this process
    stdout, stderr = other.communicate(timeout=300)
    assert other.returncode == 0, stderr
    there = json.loads(stdout.splitlines()[-1])
    assert all(math.isfinite(s) for s in here)
    assert [there[2], there[0]] == [float(here[0]), float(here[1])]  # bit for bit, in another order


@pytest.mark.slow
def test_timeout_covers_receptor_preparation_and_a_timeout_is_not_cached():
    docking.close_workers()  # the next call starts a worker and prepares the receptor (seconds)
    reward = Docking("PARP1", timeout_s=0.5)
    start = time.perf_counter()
    first = reward([ASPIRIN])
    assert math.isnan(first[0]) and time.perf_counter() - start < 2.5
    assert reward.failures == 1 and reward.calls == 1
    reward.timeout_s = 120
    second = reward([ASPIRIN])  # docked again (after the receptor is ready), not a cached NaN
    assert math.isfinite(second[0]) and 3.0 < second[0] < 9.0
    assert reward.calls == 2 and reward.cache_hits == 0
    assert reward(["O=C(C)Oc1ccccc1C(O)=O"])[0] == second[0] and reward.cache_hits == 1  # now it is cached
    worker = docking._worker("PARP1", docking.DEFAULT_SEED)
    if worker.ready_info["threads"] is not None:
        assert worker.ready_info["threads"] == 1  # single-threaded, so forking a child per ligand is safe
    # a ligand that outlives its timeout: NaN on time, its child killed, the worker still serving
    reward.timeout_s = 1.0
    start = time.perf_counter()
    assert math.isnan(reward([OLAPARIB])[0]) and time.perf_counter() - start < 2.5
    if os.path.isdir("/proc/self/task"):
        deadline = time.monotonic() + 2
        while _children(worker.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _children(worker.pid) == []
    assert vina_score(ASPIRIN, timeout_s=60) == -second[0]


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_caller_docks_with_its_own_worker():
    here = vina_score(BENZENE, timeout_s=120)
    parent_worker = docking._worker("PARP1", docking.DEFAULT_SEED).pid
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: dock, report (score, worker pid), exit without pytest's cleanup
        try:
            os.close(read_fd)
            score = vina_score(BENZENE, timeout_s=120)
            os.write(write_fd, json.dumps([score, docking._worker("PARP1", docking.DEFAULT_SEED).pid]).encode())
        finally:
            os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd) as pipe:
        there, child_worker = json.loads(pipe.read())
    os.waitpid(pid, 0)
    assert there == here and math.isfinite(here)
    assert child_worker not in (None, parent_worker)  # the parent's worker and pipes were left alone
    assert docking._worker("PARP1", docking.DEFAULT_SEED).pid == parent_worker
    assert vina_score(BENZENE, timeout_s=120) == here


# -- lifetimes -------------------------------------------------------------------------------------


def _stat(pid: int) -> tuple[str, int, str] | None:
    """(state, parent pid, start time) of a process from /proc/<pid>/stat, or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0], int(fields[1]), fields[19]


def _children(pid: int | None) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _stat(int(entry))
            if stat is not None and stat[1] == pid and stat[0] != "Z":
                found.append(int(entry))
    return found


@pytest.mark.slow
@LINUX_PROC
def test_sigkill_of_the_caller_ends_its_worker_and_the_docking_child():
    script = (
        f"from svdd.domains.molecules import vina_score; vina_score({OLAPARIB!r}, exhaustiveness=64, timeout_s=600)"
    )
    caller = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, env=dict(os.environ, OMP_NUM_THREADS="1"))
    started: dict[int, str] = {}

    def alive(pid: int) -> bool:  # not gone, not a zombie, and not another process that took its pid
        stat = _stat(pid)
        return stat is not None and stat[0] != "Z" and stat[2] == started.get(pid)

    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and caller.poll() is None:  # caller -> worker -> docking child
            workers = _children(caller.pid)
            tree = workers + [c for w in workers for c in _children(w)]
            if len(tree) >= 2:
                break
            time.sleep(0.2)
        started = {pid: stat[2] for pid in tree if (stat := _stat(pid)) is not None}
        assert len(started) >= 2, f"no worker with a docking child appeared (caller exit code {caller.poll()})"
        caller.send_signal(signal.SIGKILL)
        caller.wait()
        deadline = time.monotonic() + 5
        while any(alive(p) for p in started) and time.monotonic() < deadline:
            time.sleep(0.1)
        survivors = [p for p in started if alive(p)]
        assert survivors == [], f"processes outlived their SIGKILLed caller: {survivors}"
    finally:
        caller.kill()
        caller.wait()
        for pid in started:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
