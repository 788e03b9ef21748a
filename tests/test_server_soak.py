"""Server soak: 60 s of mixed upload / leaderboard / progress traffic from 16 concurrent clients against `tito serve`
on 127.0.0.1 → no 5xx, and every accepted upload is stored and readable afterwards."""
import json, os, random, socket, sqlite3, subprocess, threading, time
from datetime import datetime, timedelta
import httpx
import pytest
from conftest import TITO, run_tito

pytestmark = pytest.mark.slow  # a minute of traffic against `tito serve`

CLIENTS, SECONDS = 16, float(os.environ.get("TITO_SOAK_SECONDS", "60"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); return s.getsockname()[1]


def upload_body(user, k, when):
    "A consistent export with modules 1..k completed."
    unlocked = [m for m, need in (("01", 1), ("02", 2), ("03", 7)) if k >= need]
    return {"user_id": user, "timestamp": when.isoformat(), "version": "1.0",
            "module_progress": {"total_modules": 20, "completed_count": k, "completed_modules": list(range(1, k + 1)),
                                "completion_dates": {str(i): (when - timedelta(hours=k - i)).isoformat() for i in range(1, k + 1)},
                                "last_worked": f"{k:02d}" if k else None, "last_completed": f"{k:02d}" if k else None,
                                "completion_percentage": k * 100 // 20},
            "milestone_progress": {"total_milestones": 6, "unlocked_count": len(unlocked), "completed_count": 0,
                                   "unlocked_milestones": [{"id": m, "name": f"milestone {m}", "unlocked_at": when.isoformat(),
                                                            "completed": False, "completed_at": None} for m in unlocked],
                                   "locked_milestones": []}}


def test_sixteen_clients_for_a_minute(tmp_path):
    db = tmp_path / "soak.db"
    tokens = {}
    for i in range(CLIENTS):
        r = run_tito("server", "add-user", f"student{i:02d}", "--db", f"sqlite:///{db}")
        assert r.returncode == 0, r.stderr
        import re
        tokens[f"student{i:02d}"] = re.search(r"tt_[A-Za-z0-9_\-]+", r.stdout).group(0)
    port = free_port()
    log = open(tmp_path / "serve.log", "w")
    server = subprocess.Popen(TITO + ["serve", "--public", "--db", f"sqlite:///{db}", "--port", str(port), "--log-level", "warning"],
                              cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "NO_COLOR": "1"})
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(url + "/healthz").status_code == 200: break
            except httpx.TransportError: pass
            assert server.poll() is None, (tmp_path / "serve.log").read_text()
            time.sleep(0.1)
        statuses, accepted, errors = [], {}, []
        lock = threading.Lock()
        deadline = time.monotonic() + SECONDS

        def client(user, token, seed):
            rnd = random.Random(seed); k = 0; t0 = datetime(2026, 1, 1)
            with httpx.Client(base_url=url, timeout=30, headers={"Authorization": f"Bearer {token}"}) as c:
                n = 0
                while time.monotonic() < deadline:
                    n += 1
                    try:
                        roll = rnd.random()
                        if roll < 0.5:
                            k = min(20, k + rnd.choice((0, 1)))
                            body = upload_body(user, k, t0 + timedelta(minutes=n))
                            r = c.post("/api/progress/upload", json=body)
                            if r.status_code in (200, 201):
                                with lock: accepted[user] = (body, r.json())
                        elif roll < 0.8:
                            r = c.get("/api/leaderboard", params={"metric": rnd.choice(["modules_completed", "milestones_completed"]),
                                                                  "limit": rnd.choice([10, 50]), "offset": rnd.choice([0, 5])})
                        else:
                            r = c.get(f"/api/progress/{user}")
                        with lock: statuses.append(r.status_code)
                        if r.status_code == 429: time.sleep(float(r.headers.get("Retry-After", "1")))
                    except httpx.HTTPError as e:
                        with lock: errors.append(repr(e))

        threads = [threading.Thread(target=client, args=(u, t, i)) for i, (u, t) in enumerate(tokens.items())]
        for t in threads: t.start()
        for t in threads: t.join(SECONDS + 60)
        assert not errors, errors[:5]
        assert len(statuses) > CLIENTS * 10
        assert not [s for s in statuses if s >= 500], sorted(set(statuses))
        assert set(statuses) <= {200, 201, 404, 429}, sorted(set(statuses))  # 404: progress asked before a first upload
        assert len(accepted) == CLIENTS
        for user, (body, reply) in accepted.items():  # the last accepted upload of each client is what the server serves
            got = httpx.get(f"{url}/api/progress/{user}").json()
            assert got["module_progress"]["completed_modules"] == body["module_progress"]["completed_modules"], user
            assert got["timestamp"].startswith(body["timestamp"][:19])
    finally:
        server.terminate(); server.wait(20); log.close()
    stored = sum(1 for s in statuses if s == 201)
    with sqlite3.connect(db) as con:  # every stored upload is in the history, none lost or doubled
        assert con.execute("SELECT count(*) FROM snapshots").fetchone()[0] == stored
        for user, (body, reply) in accepted.items():
            data = con.execute("SELECT data FROM snapshots WHERE id = ?", (reply["snapshot_id"],)).fetchone()[0]
            assert json.loads(data)["module_progress"]["completed_modules"] == body["module_progress"]["completed_modules"]
