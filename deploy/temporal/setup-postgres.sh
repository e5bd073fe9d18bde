#!/bin/sh
# One-shot job of docker-compose.yml (image temporalio/admin-tools): create Temporal's two databases on
# its PostgreSQL and bring their schemas to the version of the server image. Safe to run again: `create`
# of an existing database and `update-schema` of a current one change nothing.
set -eu

host="${POSTGRES_SEEDS:-temporal-postgresql}"
port="${DB_PORT:-5432}"
user="${POSTGRES_USER:-temporal}"
export SQL_PASSWORD="${POSTGRES_PWD:-temporal}"
schema_dir=/etc/temporal/schema/postgresql/v12

until nc -z "$host" "$port"; do
  echo "waiting for PostgreSQL at $host:$port"
  sleep 1
done

for db in temporal temporal_visibility; do
  case "$db" in
    temporal) versioned="$schema_dir/temporal/versioned" ;;
    *) versioned="$schema_dir/visibility/versioned" ;;
  esac
  temporal-sql-tool --plugin postgres12 --ep "$host" -p "$port" -u "$user" --db "$db" create || true
  temporal-sql-tool --plugin postgres12 --ep "$host" -p "$port" -u "$user" --db "$db" setup-schema -v 0.0 || true
  temporal-sql-tool --plugin postgres12 --ep "$host" -p "$port" -u "$user" --db "$db" update-schema -d "$versioned"
done
echo "Temporal schemas are current"
