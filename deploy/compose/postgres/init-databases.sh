#!/bin/sh
# First start of the PostgreSQL container: one role and one database per service, each
# database reachable by its own role alone. Passwords come from the environment (.env).
set -eu

create() {
    psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
        -v name="$1" -v password="$2" <<'SQL'
CREATE ROLE :"name" LOGIN PASSWORD :'password';
CREATE DATABASE :"name" OWNER :"name";
REVOKE ALL ON DATABASE :"name" FROM PUBLIC;
SQL
}

create users "$USERS_DB_PASSWORD"
create booking "$BOOKING_DB_PASSWORD"
create notifications "$NOTIFICATIONS_DB_PASSWORD"
create web "$WEB_DB_PASSWORD"
