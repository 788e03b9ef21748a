"""The README's examples are run: every `tito` line of its bash blocks and every line of its notebook block.

Lines that start a long-running server (`tito serve ...`) are started in the background on a free port instead
of blocking (`conftest.tito_serve`); the PostgreSQL example of the website section is the only line not run (it names a remote host).
README.md itself is generated from nbs/index.ipynb (`python scripts/readme.py`); a test checks that they agree.
"""
import json, os, re, shlex
import httpx, pytest
from conftest import ROOT, ipython_shell, run_tito, tito_serve

README = (ROOT / "README.md").read_text()


def blocks(lang):
    "(heading, [lines]) of each ```lang block."
    out, heading = [], ""
    for m in re.finditer(r"^(#+ [^\n]*)$|^```" + lang + r"\n(.*?)^```", README, re.M | re.S):
        if m.group(1): heading = m.group(1)
        else: out.append((heading, [l for l in m.group(2).splitlines() if l.strip()]))
    return out


def tito_lines(heading):
    return [re.sub(r"\s+#.*$", "", l).strip() for h, ls in blocks("bash") if heading in h for l in ls if l.startswith("tito ")]


def sh(line, cwd, env=None):
    "Run one README line; `tito` is this checkout's entry point."
    for k, v in (env or {}).items(): line = line.replace("$" + k, v)
    argv = shlex.split(line)
    assert argv[0] == "tito"
    return run_tito(*argv[1:], cwd=cwd, env=env, timeout=300)


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    base = tmp_path_factory.mktemp("readme")
    r = run_tito("demo", "course", cwd=base, timeout=300)
    assert r.returncode == 0, r.stderr
    return base / "course"


@pytest.mark.slow
def test_terminal_block(course, tmp_path):
    lines = tito_lines("In a terminal")
    assert len(lines) >= 8
    for line in lines:
        cwd = tmp_path if line.startswith("tito init") else course
        r = sh(line.replace("PATH", str(course)).replace(".tito/*.json", ".tito/progress.json .tito/milestones.json .tito/config.json"), cwd)
        assert r.returncode == 0, (line, r.stdout, r.stderr)


@pytest.mark.slow
def test_milestones_block(course):
    for line in tito_lines("## Milestones"):
        r = sh(line, course)
        assert r.returncode == 0 and "completed" in r.stdout, (line, r.stdout, r.stderr)


@pytest.mark.slow
def test_report_block(course):
    for line in tito_lines("## Report cards"):
        r = sh(line, course)
        assert r.returncode == 0, (line, r.stderr)


@pytest.mark.slow
def test_plot_example(course):
    m = re.search(r"`(tito plot \w+ -o \S+)`", README)
    r = sh(m.group(1), course)
    assert r.returncode == 0 and (course / "milestones.png").stat().st_size > 10_000


@pytest.mark.slow
def test_website_and_sync_blocks(tmp_path):
    site, student = tmp_path / "site", tmp_path / "student"
    site.mkdir(); student.mkdir()
    web = tito_lines("## The class website")
    is_serve = lambda l: re.match(r"tito serve(\s|$)", l)
    serve = next(l for l in web if is_serve(l) and "postgresql" not in l)
    assert web.index(serve) < next(i for i, l in enumerate(web) if "add-user" in l)  # the website first: it makes the database
    with tito_serve(site, *shlex.split(serve)[2:]) as (url, _):
        r = sh(next(l for l in web if "add-user" in l), site)  # in the same folder: the database tito serve recorded
        assert r.returncode == 0, r.stderr
        token = re.search(r"tt_[A-Za-z0-9_\-]+", r.stdout).group(0)
        assert run_tito("init", student).returncode == 0
        run_tito("--root", student, "module", "complete", "01", "--skip-tests")
        env = {"TOKEN": token}
        for line in tito_lines("## Performance results, export and sync"):
            r = sh(line.replace("https://progress.example.edu", url), student, env)
            assert r.returncode == 0, (line, r.stdout, r.stderr)
        assert "server has 1/20 modules" in r.stdout
        for line in web:
            if is_serve(line) or "add-user" in line: continue
            r = sh(line, site)
            assert r.returncode == 0, (line, r.stderr)
        assert httpx.get(url + "/api/leaderboard").status_code == 401  # private by default
        top = httpx.get(url + "/api/leaderboard", headers={"Authorization": f"Bearer {token}"}).json()["leaderboard"][0]
        assert top["rank"] == 1 and top["modules_completed"] == 1


@pytest.mark.slow
def test_notebook_block(course):
    [(_, lines)] = [b for b in blocks("python") if "In a notebook" in b[0]]
    ip = ipython_shell()
    old = os.getcwd(); os.chdir(course / "modules" / "03_layers")
    try:
        results = [ip.run_line_magic(*re.sub(r"\s+#.*$", "", l)[1:].split(" ", 1)) if " " in l.split("#")[0].strip()
                   else ip.run_line_magic(l.split("#")[0].strip()[1:], "") for l in lines]
    finally: os.chdir(old)
    assert "Completed module 03 (Layers)" in results[3].text()


def test_readme_is_what_index_ipynb_renders():
    "nbs/index.ipynb is the README's source (settings.ini `readme_nb`); `python scripts/readme.py` writes README.md from it."
    import importlib.util
    spec = importlib.util.spec_from_file_location("readme_script", ROOT / "scripts" / "readme.py")
    script = importlib.util.module_from_spec(spec); spec.loader.exec_module(script)
    nb = json.loads((ROOT / "nbs" / "index.ipynb").read_text())
    assert nb["cells"] and all(c["cell_type"] == "markdown" for c in nb["cells"]), "index.ipynb holds only markdown cells"
    assert README == script.render(), "README.md differs from nbs/index.ipynb: edit the notebook, then run python scripts/readme.py"


def test_roster_and_lms_blocks(tmp_path):
    "The roster lines, then the LMS export lines, on a roster of the README's columns (ours and nbgrader's)."
    (tmp_path / "roster.csv").write_text("username,user_id,email,role,section,first_name,last_name,lms_user_id\n"
                                         "ada,s001,ada@uni.edu,,L01,Ada,Lovelace,4711\nbob,,bob@uni.edu,student,L02,,,\n"
                                         "prof,,prof@uni.edu,instructor,,,,\n")
    lines = tito_lines("### A roster")
    assert len(lines) == 2
    from tinytorch_progress.server import Db  # a site's folder: `tito serve` made its database here (commands never make one)
    Db(f"sqlite:///{tmp_path / 'tito-server.db'}").engine.dispose()
    for line in lines:
        r = sh(line, tmp_path)
        assert r.returncode == 0, (line, r.stdout, r.stderr)
    assert (tmp_path / "roster-tokens.csv").read_text().count("tt_") == 3
    assert sh(lines[0], tmp_path).returncode == 1  # never over the tokens handed out
    for line in tito_lines("### Grades for the LMS"):
        r = sh(line, tmp_path)
        assert r.returncode == 0, (line, r.stdout, r.stderr)
    canvas = (tmp_path / "canvas.csv").read_text().splitlines()
    assert canvas[0].startswith("Student,ID,SIS User ID,SIS Login ID,Section,Module 01 Tensor,") and "Points Possible" in canvas[1]
    assert canvas[2].startswith('"Lovelace, Ada",4711,s001,ada,L01,0,') and len(canvas) == 4  # the instructor is not graded
    assert (tmp_path / "moodle.csv").read_text().splitlines()[1].startswith("ada@uni.edu,0,")
    assert (tmp_path / "gradebook.csv").read_text().startswith("\ufeffusername,user_id,section,")
