"""What `tito sync` and `tito login` talk to in the sync tests, in this process, through an `httpx.MockTransport`:

- `Site`: the real class website (`server.create_app` on SQLite, users from the server's own accounts module), called
  through Starlette's test client; it can be down (connections refused), fail uploads with a 500, or store an upload
  and lose the reply.
- `FakeApi`: a stand-in implementing the two endpoints sync uses, whose answers can be set: a captive portal, a proxy,
  another API, a server that says it stored an upload but does not hold it.

`network(transport)` routes the clients the package makes through a transport, for the front ends (`tito_main`),
which take none. The same exchanges over real HTTP, against `tito serve`, are in test_sync_e2e.py."""
import contextlib, json
from pathlib import Path

import httpx
import pytest

from tinytorch_progress import tracker

SITE_URL = "https://class.example.edu"   # https: the token may go there (plain http only to this machine)
API_URL = "https://portal.example.net"
PORTAL = b"<html><body>Sign in to the campus wifi to continue</body></html>"


def workspace(tmp_path, name="ws", completed=()) -> Path:
    "A student's workspace with `completed` modules recorded."
    root = tmp_path / name
    (root / ".tito").mkdir(parents=True)
    for n in completed: tracker.complete(root, n, skip_tests=True)
    return root


def refuse(request: httpx.Request):
    raise httpx.ConnectError("[Errno 111] Connection refused", request=request)


OFFLINE = httpx.MockTransport(refuse)


@contextlib.contextmanager
def network(transport):
    "Every httpx client of `sync` and `profile` goes through `transport` (the front ends pass none)."
    from tinytorch_progress import profile, sync
    real = sync.http_client
    def client(timeout, _transport=None): return real(timeout, transport)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sync, "http_client", client); mp.setattr(profile, "http_client", client)
        yield


def reply(status: int, ctype: str, data: bytes) -> httpx.Response:
    return httpx.Response(status, headers={"content-type": ctype} if ctype else {}, content=data)


class Site:
    "The real website at `SITE_URL`, in process: counts requests, can be down, fail uploads or lose replies."
    url = SITE_URL

    def __init__(self, db_url):
        from fastapi.testclient import TestClient
        from tinytorch_progress.server import create_app
        self.app = create_app(db_url, rate_limit=None)
        self.client = TestClient(self.app)
        self.requests: list[httpx.Request] = []
        self.down, self.fail_uploads, self.lose_replies = False, 0, 0
        self.transport = httpx.MockTransport(self)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.down: refuse(request)
        self.requests.append(request)
        if request.url.path == "/api/progress/upload":
            if self.fail_uploads > 0:
                self.fail_uploads -= 1
                return httpx.Response(500, json={"detail": "injected failure"})
            if self.lose_replies > 0:
                self.lose_replies -= 1
                self.forward(request)  # the server stores the upload...
                return httpx.Response(502, json={"detail": "reply lost"})  # ...the client never learns it
        return self.forward(request)

    def forward(self, request: httpx.Request) -> httpx.Response:
        r = self.client.request(request.method, str(request.url), content=request.content, headers=request.headers)
        return httpx.Response(r.status_code, headers=r.headers, content=r.content)

    def count(self, method, path) -> int:
        return sum(1 for r in self.requests if (r.method, r.url.path) == (method, path))

    def add_user(self, name, user_id=None) -> str:
        "A student's token, from the server's own accounts module."
        from tinytorch_progress.server.accounts import add_user
        return add_user(self.app.state.db.engine, name, user_id)

    def snapshots(self, user_id=None) -> int:
        from sqlalchemy import func, select
        from tinytorch_progress.server import Snapshot, User
        s, u = Snapshot.__table__, User.__table__
        q = select(func.count()).select_from(s.join(u, u.c.id == s.c.user_pk))
        if user_id: q = q.where(u.c.user_id == user_id)
        with self.app.state.db.engine.connect() as c: return c.execute(q).scalar()

    def get(self, path, token) -> httpx.Response:
        return self.client.get(path, headers={"Authorization": f"Bearer {token}"})

    def board(self, token) -> list[str]:
        "The names on the leaderboard as the holder of `token` sees it."
        r = self.get("/api/leaderboard", token)
        assert r.status_code == 200, r.text
        return [e["username"] for e in r.json()["leaderboard"]]


@pytest.fixture
def site(tmp_path):
    s = Site(f"sqlite:///{tmp_path / 'class.db'}")
    yield s
    s.app.state.db.engine.dispose()


class FakeApi:
    "A stand-in at `API_URL` for the two endpoints; `upload_reply`/`held_reply` replace its answers, `lie` its memory."
    url = API_URL

    def __init__(self):
        self.seen, self.received, self.lie, self.upload_reply, self.held_reply = [], [], False, None, None
        self.transport = httpx.MockTransport(self)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.seen.append((request.method, path, request.headers.get("authorization")))
        if request.method == "POST":
            if self.upload_reply is not None: return reply(*self.upload_reply)  # a captive portal, a proxy: for any POST
            if path != "/api/progress/upload": return httpx.Response(404, json={"detail": "not found"})
            sent = json.loads(request.content)
            self.received.append(sent)
            return httpx.Response(201, json={"status": "stored", "user_id": sent.get("user_id") or "ada",
                                             "snapshot_id": len(self.received), "latest": True,
                                             "modules_completed": sent["module_progress"]["completed_count"],
                                             "milestones_completed": sent["milestone_progress"]["completed_count"]})
        if self.held_reply is not None: return reply(*self.held_reply)
        if path != "/api/progress/ada" or not self.received: return httpx.Response(404, json={"detail": "no progress"})
        held = dict(self.received[-1], user_id="ada")
        if self.lie:  # upstream's failure: accepted, but the dashboard stays at 0
            held["module_progress"] = {**held["module_progress"], "completed_count": 0, "completed_modules": [],
                                       "completion_dates": {}, "completion_percentage": 0}
        return httpx.Response(200, json=held)


@pytest.fixture
def api():
    return FakeApi()


def sync_json(root, transport, server=None, retries=3) -> dict:
    "`tito sync --json`'s answer (the commands it suggests spelled `tito`), from the core, quickly (no backoff)."
    from tinytorch_progress.errors import spell
    from tinytorch_progress.sync import sync
    res = sync(root, server, retries=retries, backoff=0, timeout=5, transport=transport).to_json()
    return {**res, "message": spell(res["message"])}
