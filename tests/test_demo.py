"""`tito demo`, the README's main job, end to end through the entry point — and every command it suggests.

The last test takes the demo at its word: it runs every command the demo prints (its closing "Next steps", in a new
terminal's shell, `tito serve` in the background while `tito sync` talks to it, `jupyter lab` until it serves) and
every command any of those outputs suggests, then asks `tito status --progress` what is next and runs that too, until
nothing new is suggested — which takes the demo student through the whole course, running each milestone as its
unlock banner says. Every one of them must succeed.
"""
import collections, re, subprocess, sys, time
from pathlib import Path

import httpx
import pytest
from fastcore.xtras import working_directory

from conftest import ipython_shell, run_tito
from test_first_hour import command, sections, stop, terminal, terminal_env, wait_http
from tinytorch_progress.schemas import load

pytestmark = pytest.mark.slow


def test_demo_builds_a_working_course_from_a_relative_folder(tmp_path):
    r = run_tito("demo", "course", cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr
    root = tmp_path / "course"
    assert len(list((root / "modules").glob("*/*.ipynb"))) == 20
    tito = load(root / ".tito" / "progress.json", "progress")
    assert tito.completed_modules == [1, 2] and set(tito.completion_dates) == {1, 2}
    ms = load(root / ".tito" / "milestones.json", "milestones")
    assert ms.unlocked_milestones == ["01", "02"]
    assert len(list((root / "instructor" / "reports").glob("*_report_card_*.json"))) == 20
    export = load(root / "exports" / "progress_export.json", "export")
    assert export.module_progress.completed_count == 2 and export.user_id == "demo-student"
    assert (root / "website.db").exists() and "server has 2/20 modules" in r.stdout
    assert "Next        Finish module 03 (Layers) and record it" in r.stdout
    assert "tests passed" in r.stdout and (root / ".gitignore").read_text().count(".tito/") == 1


def test_demo_refuses_a_folder_with_content(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    r = run_tito("demo", tmp_path)
    assert r.returncode == 1 and r.stderr.strip().endswith("is not empty; choose a new folder for the demo")
    assert (tmp_path / "keep.txt").read_text() == "mine"


# ---------------------------------------------------------------- every command the demo suggests

# A suggested command: `tito` (not `%tito`, not `tito-progress`) and its words, up to the first double space, backquote
# or end of line; the magic the same way.
SUGGESTED = re.compile(r"(?<![%\w-])tito(?: [\w./:=-]+)+")
MAGIC = re.compile(r"%tito(?: [\w./:=-]+)+")


def suggestions(text: str) -> list[str]:
    "The commands `text` suggests, in order of appearance."
    return [m.group(0) for m in SUGGESTED.finditer(text)] + [m.group(0) for m in MAGIC.finditer(text)]


def test_suggestions_are_read_as_printed():
    text = ("★ 1986: MLP Revival unlocked — re-create it with `tito milestone run 03`\n"
            "Next: module 08 (DataLoader): modules/08_dataloader/08_dataloader.ipynb — tito module start 08\n"
            "            $ tito module complete 03\n01  1957: Perceptron  01  ◆ unlocked tito milestone run 01\n"
            "  tito status --progress                         # your progress\n  jupyter lab ...  # in it: %tito status\n"
            "`tito-progress status` and tito's own")
    assert suggestions(text) == ["tito milestone run 03", "tito module start 08", "tito module complete 03", "tito milestone run 01",
                                 "tito status --progress", "%tito status"]


class Terminal:
    "A new terminal in the course (the printed `cd` and `source` lines first) that runs what the demo suggests."
    def __init__(self, prefix: list[str], env: dict, root: Path, base: Path):
        self.prefix, self.env, self.root, self.base, self.background, self.ran = prefix, env, root, base, [], {}

    def run(self, cmd: str) -> str:
        "Run `cmd` as a student would; its output (it must succeed)."
        if cmd.startswith("%tito"): out = self.magic(cmd)
        elif cmd.startswith("tito serve"): out = self.serve(cmd)
        elif cmd.startswith("jupyter lab"): out = self.lab(cmd)
        else:
            r = terminal(self.prefix, cmd, self.env, timeout=600)
            assert r.returncode == 0, (cmd, r.stdout[-3000:], r.stderr[-3000:])
            out = r.stdout + r.stderr
        self.ran[cmd] = out
        return out

    def magic(self, cmd: str) -> str:
        "A `%tito` line in the first module's notebook folder (as `%tito status` runs in the notebook JupyterLab opens)."
        with working_directory(self.root / "modules" / "01_tensor"):
            return ipython_shell().run_line_magic("tito", cmd.removeprefix("%tito ")).text()

    def started(self, cmd: str, name: str):
        log = open(self.base / f"{name}.log", "w")
        proc = terminal(self.prefix, cmd, self.env, background=True, stdout=log, stderr=subprocess.STDOUT)
        self.background.append((proc, log))
        return proc

    def serve(self, cmd: str) -> str:
        "The class website keeps running (a second terminal) while the first one syncs to it."
        proc = self.started(cmd, "serve")
        assert wait_http(f"http://127.0.0.1:{cmd.split('--port ')[1].split()[0]}/healthz", proc=proc) == 200
        return ""

    def lab(self, cmd: str) -> str:
        "JupyterLab as printed (its browser is `true`): it must serve the course, then it is stopped."
        proc = self.started(cmd, "jupyterlab")
        log = self.base / "jupyterlab.log"
        for _ in range(300):
            m = re.search(r"http://(?:localhost|127\.0\.0\.1):(\d+)/\S*token=(\w+)", log.read_text())
            if m or proc.poll() is not None: break
            time.sleep(0.3)
        assert m, log.read_text()[-3000:]
        port, token = m.groups()
        assert wait_http(f"http://127.0.0.1:{port}/api/contents/modules/01_tensor/01_tensor.ipynb?token={token}", proc=proc) == 200
        stop(proc)
        return ""

    def close(self):
        for proc, log in self.background: stop(proc); log.close()


def test_every_command_the_demo_suggests_runs(tmp_path):
    env = {**terminal_env(tmp_path), "BROWSER": "true"}  # `jupyter lab` opens its page with `true`: no browser here
    demo = subprocess.run([sys.executable, "-m", "tinytorch_progress.cli.main", "demo", tmp_path / "course"], env=env,
                          capture_output=True, text=True, timeout=600)
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    first, site = sections(demo.stdout)
    prefix = first[:2] if first[1].startswith("source ") else first[:1]
    printed = [command(line) for line in first[len(prefix):] + site]
    assert printed[-2:] == [printed[-2], "tito sync"] and printed[-2].startswith("tito serve")
    todo = collections.deque(printed + suggestions(demo.stdout))
    shell = Terminal(prefix, env, tmp_path / "course", tmp_path)
    try:
        while True:
            while todo:
                cmd = todo.popleft()
                if cmd not in shell.ran: todo.extend(suggestions(shell.run(cmd)))
            new = [c for c in suggestions(shell.run("tito status --progress")) if c not in shell.ran]  # what is next?
            if not new: break
            todo.extend(new)
            assert len(shell.ran) < 200, sorted(shell.ran)
    finally: shell.close()
    ran = set(shell.ran)
    assert {f"tito milestone run {i:02d}" for i in range(1, 7)} <= ran, sorted(ran)   # each milestone, as its banner said
    assert {f"tito module complete {i:02d}" for i in range(3, 21)} <= ran and "tito export" in ran
    assert {"%tito status", "tito sync", "tito report --all"} <= ran and any(c.startswith("jupyter lab") for c in ran)
    assert "Milestone 03 passed" in shell.ran["tito milestone run 03"]
    ms = load(tmp_path / "course" / ".tito" / "milestones.json", "milestones")
    assert ms.completed_milestones == ["01", "02", "03", "04", "05", "06"]
    assert "Course complete" in shell.ran["tito status --progress"]


def test_the_demo_says_how_to_sign_in_to_its_website(tmp_path):
    "The printed /login URL takes the token the demo saved for its instructor; the served site is the demo's own database."
    env = terminal_env(tmp_path)
    demo = subprocess.run([sys.executable, "-m", "tinytorch_progress.cli.main", "demo", tmp_path / "course"], env=env,
                          capture_output=True, text=True, timeout=600)
    assert demo.returncode == 0, demo.stderr[-3000:]
    m = re.search(r"^Sign in at (http://127\.0\.0\.1:(\d+)/login) as the instructor \(([\w-]+)\): paste the token in (\S+)$",
                  demo.stdout, re.M)
    assert m, demo.stdout[-2000:]
    login_url, port, instructor, token_file = m.groups()
    token_path = tmp_path / "course" / token_file
    assert token_path.stat().st_mode & 0o777 == 0o600 and token_file in (tmp_path / "course" / ".gitignore").read_text().splitlines()
    first, site = sections(demo.stdout)
    shell = Terminal(first[:2] if first[1].startswith("source ") else first[:1], env, tmp_path / "course", tmp_path)
    users = terminal(shell.prefix, "tito server list-users", env)   # before any `tito serve`: the demo's own database
    assert users.returncode == 0 and instructor in users.stdout, users.stderr
    assert f"database sqlite:///{(tmp_path / 'course' / 'website.db').resolve()} (recorded by `tito demo` in .tito/server.json)" in users.stderr
    try:
        shell.run(command(site[0]))   # tito serve, as printed
        with httpx.Client(base_url=login_url.removesuffix("/login"), follow_redirects=False) as browser:
            assert browser.get("/class").status_code in (303, 401)                       # private until signed in
            r = browser.post("/login", data={"token": token_path.read_text().strip(), "next": "/class"},
                             headers={"Origin": login_url.removesuffix("/login")})
            assert r.status_code == 303 and r.headers["location"] == "/class", r.text[:500]
            page = browser.get("/class")
            assert page.status_code == 200 and "demo-student" in page.text, page.text[:500]
    finally: shell.close()
