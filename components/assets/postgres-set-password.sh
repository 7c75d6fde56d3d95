#!/bin/sh
# Sets the connecting role's password from the secret file, over the local socket (which the
# postgres image trusts). The password goes to the server as a quoted literal on stdin: never on
# a command line, in the environment or in a file other than the secret itself.
set -eu
psql -v ON_ERROR_STOP=1 --no-psqlrc --quiet -U "$POSTGRES_USER" -d "$POSTGRES_DB" <<'SQL'
\set password `cat "$POSTGRES_PASSWORD_FILE"`
ALTER ROLE CURRENT_USER WITH PASSWORD :'password';
SQL
