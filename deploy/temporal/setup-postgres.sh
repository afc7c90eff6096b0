#!/bin/sh
# One-shot (temporalio/admin-tools): creates or updates Temporal's two PostgreSQL schemas.
# Safe to run on every `docker compose up`: `create` fails harmlessly when the database
# exists, and update-schema only applies what is missing.
set -eu
SQL="temporal-sql-tool --plugin postgres12 --ep postgresql -u ${POSTGRES_USER} -p 5432"
export SQL_PASSWORD="${POSTGRES_PWD}"
until nc -z -w 5 postgresql 5432; do echo 'waiting for PostgreSQL...'; sleep 1; done
for db in temporal temporal_visibility; do
  $SQL --db "$db" create 2>/dev/null || echo "database $db exists"
done
$SQL --db temporal setup-schema -v 0.0 2>/dev/null || true
$SQL --db temporal update-schema -d /etc/temporal/schema/postgresql/v12/temporal/versioned
$SQL --db temporal_visibility setup-schema -v 0.0 2>/dev/null || true
$SQL --db temporal_visibility update-schema -d /etc/temporal/schema/postgresql/v12/visibility/versioned
echo 'schemas ready'
