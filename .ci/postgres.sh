#!/usr/bin/env bash
# Start the Debian PostgreSQL cluster and create the test role and database (idempotent).
set -euo pipefail
command -v pg_ctlcluster >/dev/null || { echo "no PostgreSQL installed"; exit 1; }
ver=$(ls /usr/lib/postgresql | sort -n | tail -1)
pg_lsclusters -h | grep -q "^$ver main" || pg_createcluster "$ver" main >/dev/null
pg_ctlcluster "$ver" main start 2>/dev/null || true
for i in $(seq 1 30); do su postgres -c "pg_isready -q" && break; sleep 1; done
su postgres -c "psql -tAc \"SELECT 1 FROM pg_roles WHERE rolname='tito'\"" | grep -q 1 \
  || su postgres -c "psql -qc \"CREATE ROLE tito LOGIN PASSWORD 'tito' CREATEDB\""
su postgres -c "psql -tAc \"SELECT 1 FROM pg_database WHERE datname='tito_test'\"" | grep -q 1 \
  || su postgres -c "createdb -O tito tito_test"
echo "PostgreSQL ready: postgresql+psycopg://tito:tito@127.0.0.1:5432/tito_test"
