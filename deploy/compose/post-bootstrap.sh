#!/bin/sh
# Run once by Patroni on the new primary after initdb (bootstrap.post_bootstrap): the
# gateways' role and database. The password is read from the mounted secret inside psql,
# so it is on no command line; $1 is Patroni's connection string for the superuser.
set -eu
psql "$1" --set ON_ERROR_STOP=1 <<'SQL'
\set password `cat /run/secrets/sealpost-db-password`
CREATE ROLE sealpost LOGIN PASSWORD :'password';
CREATE DATABASE sealpost OWNER sealpost;
SQL
