"""Fuzz the website's OpenAPI schema with schemathesis, in process (ASGI): no input may produce a 5xx, and responses
must match the documented status codes, content types and schemas.

Bounded: a fixed number of examples per operation, derandomized, so the run is reproducible and well under 2 minutes.
The upload operation always carries a valid token (401s are covered in test_server.py); part of the generated bodies
are made consistent and owned by the token's user, so the storing path is fuzzed too, not only the rejections."""
import atexit, os, shutil, tempfile, zlib

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (content_type_conformance, not_a_server_error, response_schema_conformance,
                                 status_code_conformance)

from tinytorch_progress import server as srv
from tinytorch_progress.ids import module_number
from test_server import fresh_db, pg_unavailable

EXAMPLES = int(os.environ.get("TITO_FUZZ_EXAMPLES", "100"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

_tmp = tempfile.mkdtemp(prefix="tito-fuzz-")
atexit.register(shutil.rmtree, _tmp, True)


def _site(url):
    app = srv.create_app(url, rate_limit=(10**9, 10**9))
    eng = app.state.db.engine
    token = srv.add_user(eng, "fuzz")
    # something to read back for GET /api/progress/{user_id} and /u/{username}
    srv.store_upload(app.state.db, srv.user_for_token(eng, token), srv.parse_upload(
        b'{"module_progress": {"total_modules": 20, "completed_count": 1, "completed_modules": [1], "completion_percentage": 5},'
        b' "milestone_progress": {"total_milestones": 6, "unlocked_count": 0, "completed_count": 0}}'))
    return app, {"Authorization": f"Bearer {token}"}


def _pg_url():
    "A fresh PostgreSQL schema for the whole fuzz run (dropped at exit), or None when PostgreSQL is unreachable."
    if pg_unavailable(): return None
    url, drop = fresh_db("postgresql", None)
    atexit.register(drop)
    return url


def _num(x):
    try: return module_number(x)
    except ValueError: return None


def make_consistent(body):
    "Turn a generated upload into a consistent one owned by the token's user (so it is stored, not rejected)."
    if not (isinstance(body, dict) and isinstance(body.get("module_progress"), dict) and isinstance(body.get("milestone_progress"), dict)):
        return body
    mp, sp = body["module_progress"], body["milestone_progress"]
    mods = mp.get("completed_modules")
    if not isinstance(mods, list) or not isinstance(mp.get("total_modules"), int) or not 1 <= mp["total_modules"] <= 999: return body
    nums = sorted({n for n in map(_num, mods) if n is not None})
    nums = [n for n in nums if n <= mp["total_modules"]]
    mp.update(completed_modules=nums, completed_count=len(nums), completion_percentage=len(nums) * 100 // mp["total_modules"])
    unl = sp.get("unlocked_milestones") if isinstance(sp.get("unlocked_milestones"), list) else []
    seen, keep = set(), []
    for m in unl:
        key = repr(m.get("id")) if isinstance(m, dict) else None
        if key is not None and key not in seen:
            seen.add(key); keep.append(m)
            if m.get("completed") is not True: m["completed_at"] = None
    sp.update(unlocked_milestones=keep, unlocked_count=len(keep), locked_milestones=[],
              completed_count=sum(m.get("completed") is True for m in keep), total_milestones=max(len(keep), 6))
    body["user_id"] = "fuzz"
    return body


def _schema(app):
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)

    @schema.hook
    def map_body(context, body):
        # two bodies in three are repaired into consistent ones; the rest stay as generated (rejections)
        if isinstance(body, dict) and zlib.crc32(repr(body).encode("utf-8", "replace")) % 3: return make_consistent(body)
        return body
    return schema


SQLITE_APP, SQLITE_AUTH = _site(f"sqlite:///{_tmp}/fuzz.db")
sqlite_schema = _schema(SQLITE_APP)
_pg = _pg_url()
PG_APP, PG_AUTH = _site(_pg) if _pg else (SQLITE_APP, SQLITE_AUTH)
pg_schema = _schema(PG_APP)

FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))


@sqlite_schema.parametrize()
@FUZZ
def test_fuzz_sqlite(case):
    case.call_and_validate(headers=SQLITE_AUTH, checks=CHECKS)


@pg_schema.parametrize()
@FUZZ
def test_fuzz_postgresql(case):
    if _pg is None: pytest.skip(pg_unavailable())
    case.call_and_validate(headers=PG_AUTH, checks=CHECKS)


def test_fuzzing_reached_the_store():
    "The repaired bodies really were stored (the fuzz did not only exercise rejections)."
    from sqlalchemy import func, select
    with SQLITE_APP.state.db.read() as c:
        n = c.execute(select(func.count()).select_from(srv.Snapshot.__table__)).scalar()
    if n <= 1: pytest.skip("run together with test_fuzz_sqlite")
    assert n > 5
