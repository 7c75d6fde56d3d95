#!/bin/sh
# Makes the roles of the maricusco database what the stack says, at every start of the postgres
# container, over the local socket (which the image trusts), as the superuser:
#   - POSTGRES_USER (postgres) is the only superuser, for maintenance; its password is the
#     superuser's secret;
#   - MARICUSCO_APP_USER owns the database and everything the app made in it, and is no
#     superuser: no CREATEROLE, no CREATEDB, no replication, no COPY ... PROGRAM;
#   - MARICUSCO_BACKUP_USER may replicate and read all data (what pg_dump, pg_basebackup and
#     pg_receivewal need), nothing more; with MARICUSCO_BACKUPS=false it cannot log in, and the
#     WAL slot MARICUSCO_WAL_SLOT is dropped so that nothing holds WAL back;
#   - every password is set from its secret file, so a rotation reaches an existing database.
# A cluster made by an earlier version of the program has the app's role as its bootstrap
# superuser, which cannot stop being one: it is renamed postgres, and a new app role takes over
# the database and the objects in it, data untouched. Every step is idempotent, so an interrupted
# run is finished by the next start. Passwords go to the server as quoted literals on stdin: never
# on a command line, in the environment or in another file.
set -eu
super=${POSTGRES_USER:-postgres}
app=$MARICUSCO_APP_USER
db=$POSTGRES_DB
migrator=maricusco_migrator

log() { echo "maricusco: $*" >&2; }

# as ROLE [psql args]: runs psql as ROLE on the database, stopping at the first error.
as() {
  role=$1
  shift
  psql -v ON_ERROR_STOP=1 --no-psqlrc --quiet -tA -U "$role" -d "$db" "$@"
}

bootstrap=$(as "$super" -c "SELECT rolname FROM pg_roles WHERE oid = 10" 2>/dev/null ||
  as "$app" -c "SELECT rolname FROM pg_roles WHERE oid = 10")
if [ "$bootstrap" != "$super" ]; then
  if [ "$bootstrap" != "$app" ]; then
    log "the cluster's superuser is $bootstrap, neither $super nor $app: rename it $super by hand"
    exit 1
  fi
  if [ -n "$(echo "SELECT 1 FROM pg_roles WHERE rolname = :'super'" | as "$bootstrap" -v super="$super")" ]; then
    log "the cluster's superuser is $bootstrap and a role $super exists too: drop or rename $super by hand"
    exit 1
  fi
  log "migrating a cluster whose superuser is the app's role $app: it becomes $super, and a new role $app owns the data"
  as "$bootstrap" -v migrator="$migrator" <<'SQL'
SELECT NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'migrator') AS missing \gset
\if :missing
CREATE ROLE :"migrator" SUPERUSER LOGIN;
\endif
SQL
  # A role cannot rename itself while it is logged in.
  echo 'ALTER ROLE :"old" RENAME TO :"new"' | as "$migrator" -v old="$bootstrap" -v new="$super" >/dev/null
fi

as "$super" -v app="$app" -v db="$db" -v backup="$MARICUSCO_BACKUP_USER" -v backups="${MARICUSCO_BACKUPS:-true}" \
  -v slot="$MARICUSCO_WAL_SLOT" -v migrator="$migrator" <<'SQL'
\set super_password `cat "$POSTGRES_PASSWORD_FILE"`
\set app_password `cat "$MARICUSCO_APP_PASSWORD_FILE"`
ALTER ROLE CURRENT_USER WITH PASSWORD :'super_password';

SELECT NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'app') AS missing \gset
\if :missing
CREATE ROLE :"app" LOGIN;
\endif
ALTER ROLE :"app" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD :'app_password';

-- The database, and every object of the superuser's in it that is neither the system's nor an
-- extension's, belong to the app: what it made when it was the superuser, or nothing in a new
-- cluster. The owner of the database changes last, so an interrupted run is done again.
SELECT datdba <> (SELECT oid FROM pg_roles WHERE rolname = :'app') AS adopt
  FROM pg_database WHERE datname = current_database() \gset
\if :adopt
SELECT set_config('maricusco.app', :'app', false) \g /dev/null
DO $adopt$
DECLARE
  app text := current_setting('maricusco.app');
  obj record;
BEGIN
  FOR obj IN
    SELECT format('ALTER SCHEMA %I OWNER TO %I', n.nspname, app) AS ddl
      FROM pg_namespace n
     WHERE n.nspowner = 10 AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%'
       AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_namespace'::regclass AND d.objid = n.oid AND d.deptype = 'e')
    UNION ALL
    -- Sequences that belong to a column follow their table.
    SELECT format('ALTER %s %s OWNER TO %I',
                  CASE c.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                                 WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END, c.oid::regclass, app)
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relowner = 10 AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
       AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%'
       AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype IN ('e', 'a', 'i'))
    UNION ALL
    SELECT format('ALTER ROUTINE %s OWNER TO %I', p.oid::regprocedure, app)
      FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
     WHERE p.proowner = 10 AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%'
       AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
    UNION ALL
    SELECT format('ALTER %s %s OWNER TO %I', CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END, t.oid::regtype, app)
      FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
     WHERE t.typowner = 10 AND t.typtype IN ('e', 'd', 'r', 'c') AND t.typcategory <> 'A'
       AND (t.typtype <> 'c' OR (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c')
       AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%'
       AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_type'::regclass AND d.objid = t.oid AND d.deptype = 'e')
  LOOP
    EXECUTE obj.ddl;
  END LOOP;
END
$adopt$;
ALTER DATABASE :"db" OWNER TO :"app";
\endif

SELECT NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'backup') AS missing \gset
\if :missing
CREATE ROLE :"backup" NOLOGIN;
\endif
ALTER ROLE :"backup" WITH NOLOGIN REPLICATION NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;
SELECT NOT pg_has_role(:'backup', 'pg_read_all_data', 'MEMBER') AS missing \gset
\if :missing
GRANT pg_read_all_data TO :"backup";
\endif
\if :backups
\set backup_password `cat "$MARICUSCO_BACKUP_PASSWORD_FILE"`
ALTER ROLE :"backup" WITH LOGIN PASSWORD :'backup_password';
\else
SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = :'slot' AND NOT active \g /dev/null
\endif

SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'migrator') AS migrated \gset
\if :migrated
DROP ROLE :"migrator";
\endif
SQL
log "roles ready: $super (superuser), $app (owns $db), $MARICUSCO_BACKUP_USER (replication, reads all data; logs in: ${MARICUSCO_BACKUPS:-true})"
