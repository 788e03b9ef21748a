"""Open many Jupyter kernel sessions and run the `%tito` cells a student runs most; count the sessions where a cell
gets no reply. For checking a kernel version before changing its pin in settings.ini (ipykernel 7.3 on Python 3.10
left 3 of 45 sessions hanging; 6.31 on 3.10 and 7.4 on 3.11 none).

Run with the Python whose kernel is under test: `.venv-3.10/bin/python scripts/kernel_soak.py [SESSIONS] [ROUNDS]`.
A hang prints the kernel's process state and every thread's stack (faulthandler) and counts; exit status 1 if any.
"""
import os, queue, signal, subprocess, sys, tempfile, time
from pathlib import Path

from jupyter_client.manager import start_new_kernel

CELLS = ("%tito status", "%tito complete 01 --skip-tests", "%tito plot milestones", "%tito plot progress")


def stack_dump_cell(path) -> str:
    "A cell that makes the kernel write every thread's stack to `path` on SIGUSR1 (faulthandler: even when stuck in C)."
    return f"import faulthandler as _fh, signal as _sig; _fh.register(_sig.SIGUSR1, open({str(path)!r}, 'w'), all_threads=True)"


def kernel_state(pid: int) -> str:
    "The scheduler state and wait channel of the process, of each of its threads and of its children, from /proc."
    def one(d):
        try: return f"{Path(d, 'stat').read_text().split(') ')[1].split()[0]}/{Path(d, 'wchan').read_text() or '-'}"
        except OSError as e: return f"? ({e})"
    lines = [f"pid {pid} {one(f'/proc/{pid}')}, threads: " + ", ".join(one(t) for t in Path(f"/proc/{pid}/task").glob("*"))]
    for d in Path("/proc").glob("[0-9]*"):
        try:
            if Path(d, "stat").read_text().split(") ")[1].split()[1] == str(pid):
                lines.append(f"  child {d.name} {one(d)}: {Path(d, 'cmdline').read_bytes().replace(bytes(1), b' ').decode()[:200]}")
        except (OSError, IndexError): continue
    return "\n".join(lines)


def session(ws: str, rounds: int, stacks: Path) -> str | None:
    "None when every cell was answered within 30 s, else what hung and where the kernel was."
    km, kc = start_new_kernel(kernel_name="python3", cwd=ws, env={**os.environ, "TITO_NO_SYNC": "1", "TITO_ROOT": ws},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def run(code):
        msg_id = kc.execute(code)
        while True:
            m = kc.get_iopub_msg(timeout=30)
            if m["parent_header"].get("msg_id") == msg_id and m["msg_type"] == "status" and m["content"]["execution_state"] == "idle": return

    code = "setup"
    try:
        run(stack_dump_cell(stacks))
        run("%load_ext tinytorch_progress")
        for _ in range(rounds):
            for code in CELLS: run(code)
        return None
    except queue.Empty:
        pid = km.provisioner.process.pid
        where = kernel_state(pid)
        os.kill(pid, signal.SIGUSR1); time.sleep(1)
        return f"no reply to {code!r}; kernel {where}\n{stacks.read_text() if stacks.exists() else '(no stacks written)'}"
    finally:
        kc.stop_channels(); km.shutdown_kernel(now=True)


def main(sessions: int = 20, rounds: int = 5) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        ws = str(Path(tmp, "course"))
        subprocess.run([sys.executable, "-m", "tinytorch_progress.cli.main", "init", ws], check=True, capture_output=True)
        t0, hangs = time.monotonic(), 0
        for n in range(sessions):
            problem = session(ws, rounds, Path(tmp, f"stacks-{n}.txt"))
            if problem: hangs += 1; print(f"session {n}: {problem}", flush=True)
        import ipykernel
        print(f"ipykernel {ipykernel.__version__}, Python {sys.version.split()[0]}: {hangs} of {sessions} sessions hung "
              f"({rounds} rounds of {len(CELLS)} cells each, {time.monotonic() - t0:.0f} s)")
        return 1 if hangs else 0


if __name__ == "__main__":
    sys.exit(main(*map(int, sys.argv[1:3])))
