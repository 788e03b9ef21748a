"""The progress website, one module per job: `db`, `limits`, `accounts`, `roster`, `ingest`, `ranking`, `classview`, `grades`, `pages`, `deps`, `live`, `hub`, `app`."""
# Hand-written, not generated: nbdev exports modules, not package `__init__` files (nbs/server/ holds the modules'
# source). Every public name of these modules is available here, as `tinytorch_progress.server.NAME`, resolved on first
# use from the modules in layer order: `from tinytorch_progress.server import add_user` (the admin commands) loads the
# database layers only, and the web stack (FastAPI, Jinja2) is imported when an app is built. The routers of
# `routes/` are not listed: each is named `router`, and `app` assembles them.
from importlib import import_module

MODULES = ("db", "limits", "accounts", "roster", "ingest", "ranking", "classview", "grades", "pages", "deps", "live", "hub", "app")


def __getattr__(name: str):
    if name in MODULES: return import_module(f"{__name__}.{name}")
    if not name.startswith("__"):
        for m in MODULES:
            mod = import_module(f"{__name__}.{m}")
            if name in mod.__all__:
                globals()[name] = value = getattr(mod, name)
                return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(MODULES))
