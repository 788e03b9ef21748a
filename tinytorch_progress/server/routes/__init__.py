"""The website's routes, one router per concern: `api` (JSON), `pages` (HTML), `auth` (signing in and out)."""
# Hand-written, not generated: nbdev exports modules, not package `__init__` files (nbs/server/routes/ holds their source).
