"""Nothing a run starts outlives it (issue 19, item 7): not a daemon's `setsid` double fork, not the orphans left when
the program kills its parent (the supervisor) or `tito` itself, not at the end of the run nor at its timeout.

Each program starts "hearts": small processes that write their pid, then a heartbeat file every 50 ms, until killed.
After the run, every heart (and the program, and the supervisor) must be dead, and no heartbeat may change any more.
"""
import json, os, signal, subprocess, sys, time
from pathlib import Path

import nbformat
import pytest

from tinytorch_progress import child_process, runner
from tinytorch_progress.runner import child_env, run_program

pytestmark = pytest.mark.slow

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the sub-reaper supervisor is Linux's")

HEART = """import os, sys, time
open(sys.argv[1] + ".pid", "w").write(str(os.getpid()))
while True:
    open(sys.argv[1] + ".beat", "w").write(repr(time.time())); time.sleep(0.05)
"""

# Shared by every program: start a heart as a plain child (it stays in the run's process group), or escape it the way
# daemons do (fork, setsid, fork again: the heart is orphaned at once, in a session of its own).
HELPERS = """import os, signal, subprocess, sys, time
def _wait_for(name):
    while not os.path.exists(name + ".pid"): time.sleep(0.01)
def heart(name):
    subprocess.Popen([sys.executable, "heart.py", name]); _wait_for(name)
def escape(name):
    sys.stdout.flush()
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0: os.execv(sys.executable, [sys.executable, "heart.py", name])
        os._exit(0)
    os.wait(); _wait_for(name)
def parent_of(pid):
    return int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])
open("program.pid", "w").write(str(os.getpid()))
open("supervisor.pid", "w").write(str(os.getppid()))
"""


def alive(pid: int) -> bool:
    "Running (a zombie has ended: only its exit status waits to be collected)."
    try: return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError): return False


def program(d: Path, body: str, name="prog.py") -> Path:
    (d / "heart.py").write_text(HEART)
    p = d / name
    p.write_text(HELPERS + body)
    return p


def assert_all_dead(d: Path, names, within: float = 5):
    "Every process named (its `.pid` file) is dead within `within` s, and no heartbeat changes afterwards."
    pids = {n: int((d / f"{n}.pid").read_text()) for n in names}
    deadline = time.monotonic() + within
    while any(alive(p) for p in pids.values()) and time.monotonic() < deadline: time.sleep(0.05)
    assert not [n for n, p in pids.items() if alive(p)], f"still running: {[n for n, p in pids.items() if alive(p)]}"
    beats = {b: b.read_text() for b in d.glob("*.beat")}
    time.sleep(0.3)
    assert {b: b.read_text() for b in beats} == beats, "a heartbeat changed after the run"


@pytest.fixture(autouse=True)
def _kill_leftovers(tmp_path):
    "A failing test must not leave its hearts running on the machine."
    yield
    for f in tmp_path.rglob("*.pid"):
        try:
            pid = int(f.read_text())
            if pid not in (os.getpid(), os.getppid()): os.kill(pid, signal.SIGKILL)  # without a supervisor: pytest
        except (ValueError, OSError): pass


@linux
def test_a_double_fork_is_swept_when_the_program_ends(tmp_path):
    prog = program(tmp_path, "heart('child'); escape('daemon'); print('left two hearts running')\n")
    r = run_program(prog, tmp_path, timeout=60)
    assert (r.passed, r.message) == (True, "left two hearts running"), r
    assert_all_dead(tmp_path, ["child", "daemon", "program", "supervisor"], within=2)


@linux
def test_a_double_fork_in_a_module_notebook_is_swept_at_the_timeout(tmp_path):
    (tmp_path / "heart.py").write_text(HEART)
    nb = tmp_path / "01_tensor.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in (
        HELPERS, "escape('daemon')", "def test_unit_forever():\n    time.sleep(120)")]), nb)
    t0 = time.monotonic()
    r = run_program(nb, tmp_path, timeout=4, tests=True)
    assert (r.passed, r.timed_out, r.message) == (False, True, "timed out after 4 s"), r
    assert time.monotonic() - t0 < 8
    assert_all_dead(tmp_path, ["daemon", "program", "supervisor"], within=2)


@linux
def test_a_program_that_kills_its_parent_leaves_nothing(tmp_path):
    "Its parent is the supervisor: the program dies with it, and the runner sweeps the group and the run's tag."
    prog = program(tmp_path, "heart('child'); escape('daemon')\n"
                             "print('killing my parent', flush=True); os.kill(os.getppid(), signal.SIGKILL); time.sleep(120)\n")
    r = run_program(prog, tmp_path, timeout=60)
    assert not r.passed and r.message == "crashed: killed by SIGKILL (last output: killing my parent)", r
    assert_all_dead(tmp_path, ["child", "daemon", "program", "supervisor"])


# The escape of issue 28: a grandchild leaves the run's session (setsid), clears its environment (no run tag) and
# execs; then the program kills the supervisor. Contained by the run's cgroup where tito may make one, else by tito
# being a sub-reaper for the run — both are tested.
ESCAPE = """
if os.fork() == 0:
    os.setsid()
    os.execve(sys.executable, [sys.executable, "heart.py", "escapee"], {})
_wait_for("escapee")
print("escapee out, killing my parent", flush=True); os.kill(os.getppid(), signal.SIGKILL); time.sleep(120)
"""


@linux
@pytest.mark.parametrize("way", ["cgroup", "sub-reaper"])
def test_a_setsid_env_clearing_escape_after_killing_the_supervisor_leaves_nothing(tmp_path, monkeypatch, way):
    if way == "sub-reaper": monkeypatch.setattr(runner, "make_cgroup", lambda name: None)  # as where cgroups are not ours
    elif runner.make_cgroup("tito-probe-" + str(os.getpid())) is None: pytest.skip("tito may not make a cgroup here (not root, no delegated cgroup v2)")
    else: child_process.end_cgroup(child_process.cgroup_base() + f"/tito-probe-{os.getpid()}")
    prog = program(tmp_path, ESCAPE)
    r = run_program(prog, tmp_path, timeout=60)
    assert not r.passed and "killing my parent" in r.message, r
    assert_all_dead(tmp_path, ["escapee", "program", "supervisor"])


@linux
def test_a_program_that_kills_tito_leaves_nothing(tmp_path):
    "`tito` (here a process running `run_program`) is SIGKILLed: the supervisor gets its death signal and sweeps."
    prog = program(tmp_path, "heart('child'); escape('daemon')\n"
                             "os.kill(parent_of(os.getppid()), signal.SIGKILL); time.sleep(120)\n")
    tito = subprocess.Popen([sys.executable, "-c", "import sys; from tinytorch_progress.runner import run_program\n"
                             "run_program(sys.argv[1], sys.argv[2], timeout=60)", prog, tmp_path],
                            env=child_env(tmp_path), stdout=subprocess.DEVNULL)
    assert tito.wait(30) == -signal.SIGKILL
    assert int((tmp_path / "supervisor.pid").read_text()) != tito.pid  # the program killed tito, not its own parent
    assert_all_dead(tmp_path, ["child", "daemon", "program", "supervisor"])


@linux
def test_tito_killed_at_any_moment_leaves_nothing(tmp_path):
    "Killed while the supervisor starts up too: either it never starts the program, or it sweeps what it started."
    prog = program(tmp_path, "heart('child'); escape('daemon'); time.sleep(120)\n")
    for delay in (0.0, 0.02, 0.1):
        for f in tmp_path.glob("*.pid"): f.unlink()
        tito = subprocess.Popen([sys.executable, "-c", "import sys; from tinytorch_progress.runner import run_program\n"
                                 "run_program(sys.argv[1], sys.argv[2], timeout=60)", prog, tmp_path],
                                env=child_env(tmp_path), stdout=subprocess.DEVNULL)
        time.sleep(0.5 + delay)  # the interpreter starts, then the supervisor
        tito.kill(); tito.wait()
        time.sleep(1)
        names = [f.stem for f in tmp_path.glob("*.pid")]
        assert_all_dead(tmp_path, names)


def test_without_a_supervisor_the_process_group_is_still_killed(tmp_path, monkeypatch):
    "What macOS gets: the program in a session of its own, the group killed at the end."
    monkeypatch.setattr(runner, "CONTAIN", False)
    prog = program(tmp_path, "heart('child'); print('done')\n")
    r = run_program(prog, tmp_path, timeout=60)
    assert (r.passed, r.message) == (True, "done"), r
    assert int((tmp_path / "supervisor.pid").read_text()) == os.getpid()  # the program's parent is the runner itself
    assert_all_dead(tmp_path, ["child", "program"], within=2)


@linux
def test_pytest_runs_contained_too(tmp_path):
    "Module tests in a pytest folder run under the same supervisor: a test's daemon is swept when pytest ends."
    from tinytorch_progress.runner import run_process
    (tmp_path / "heart.py").write_text(HEART)
    (tmp_path / "test_daemon.py").write_text(HELPERS.replace('open("program.pid"', 'os.chdir(os.path.dirname(__file__)); open("program.pid"')
                                             + "def test_leaves_a_daemon():\n    escape('daemon')\n")
    out = []
    end = run_process([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", tmp_path / "test_daemon.py"],
                      tmp_path, child_env(tmp_path), 60, out.append)
    assert end.returncode == 0, "\n".join(out)
    assert_all_dead(tmp_path, ["daemon"], within=2)
