#!/bin/sh
# Backups of the maricusco database, run in a container of the PostgreSQL image the stack runs,
# so the client matches the server.
#
#   backup.sh serve           a dump now (or when one interval has passed since the newest good
#                             dump), then one every BACKUP_INTERVAL_SECONDS (the container's command)
#   backup.sh once            a dump now (./deploy.sh <stack> backup)
#   backup.sh health          healthy while the newest good dump is younger than 1.5 intervals, or
#                             the service started less than one interval ago
#   backup.sh newest          the path of the newest good dump
#   backup.sh restore DUMP    restore DUMP into the database (./deploy.sh <stack> restore)
#
# A dump is pg_dump's custom format (-Fc), named by when it was taken (UTC, sortable). After each
# dump every kept dump must read back with `pg_restore --list`: a new one that does not is
# discarded, an older one is renamed *.corrupt, and the run fails loudly. Then all but the newest
# BACKUP_KEEP good dumps are removed. The password is read from POSTGRES_PASSWORD_FILE into a
# private pgpass file, never onto a command line or into the environment.
set -eu
dir=${BACKUP_DIR:-/backups}
interval=${BACKUP_INTERVAL_SECONDS:-86400}
keep=${BACKUP_KEEP:-7}
tmp=${TMPDIR:-/tmp}

log() { echo "maricusco-backup: $*" >&2; }

pgpass() {
  umask 077
  printf '*:*:*:*:%s\n' "$(sed 's/[\\:]/\\&/g' "$POSTGRES_PASSWORD_FILE")" > "$tmp/pgpass"
  export PGPASSFILE="$tmp/pgpass"
}

good_dumps() { ls -1 "$dir"/maricusco-*.dump 2>/dev/null | sort; }

once() {
  pgpass
  stamp=$(date -u +%Y%m%dT%H%M%SZ)
  while [ -e "$dir/maricusco-$stamp.dump" ]; do sleep 1; stamp=$(date -u +%Y%m%dT%H%M%SZ); done
  final="$dir/maricusco-$stamp.dump"
  partial="$dir/.maricusco-$stamp.dump.partial"
  start=$(date +%s)
  if ! pg_dump -Fc -f "$partial"; then
    rm -f "$partial"
    log "FAILED: pg_dump of $PGDATABASE on $PGHOST did not complete"
    return 1
  fi
  if ! pg_restore --list "$partial" > /dev/null; then
    rm -f "$partial"
    log "FAILED: the new dump does not read back with pg_restore --list; it was discarded"
    return 1
  fi
  mv "$partial" "$final"
  log "$final: $(wc -c < "$final") bytes in $(($(date +%s) - start)) s, verified"
  status=0
  for f in $(good_dumps); do
    if ! pg_restore --list "$f" > /dev/null 2>&1; then
      mv "$f" "$f.corrupt"
      log "FAILED verification: $f does not read back with pg_restore --list; renamed $f.corrupt, the other dumps are kept"
      status=1
    fi
  done
  good_dumps | sort -r | tail -n +$((keep + 1)) | while read -r old; do
    rm -f "$old"
    log "removed $old: $keep newer good dumps are kept"
  done
  return $status
}

serve() {
  date +%s > "$tmp/started"
  trap 'exit 0' TERM INT
  # A restart (a redeploy, or a new database after a loss) does not dump again while the newest
  # good dump is younger than one interval: the schedule goes on from it, and a database that was
  # just recreated empty does not push good dumps out before they are restored.
  newest=$(good_dumps | tail -n 1)
  if [ -n "$newest" ]; then
    due=$((interval - ($(date +%s) - $(stat -c %Y "$newest"))))
    if [ "$due" -gt 0 ]; then
      log "the newest good dump is $newest; the next is due in $due s, then every $interval s, keeping $keep"
      sleep "$due" &
      wait $!
    fi
  fi
  log "a dump now, then every $interval s, keeping $keep"
  while :; do
    once || log "this run failed; the healthcheck turns unhealthy unless a good dump follows in time"
    sleep "$interval" &
    wait $!
  done
}

health() {
  now=$(date +%s)
  started=$(cat "$tmp/started" 2> /dev/null || echo 0)
  [ $((now - started)) -lt "$interval" ] && exit 0
  newest=$(good_dumps | tail -n 1)
  if [ -z "$newest" ]; then
    echo "no good dump in $dir"
    exit 1
  fi
  age=$((now - $(stat -c %Y "$newest")))
  if [ "$age" -gt $((interval * 3 / 2)) ]; then
    echo "the newest good dump, $newest, is $age s old: more than 1.5 intervals"
    exit 1
  fi
}

restore() {
  dump=$1
  case "$dump" in /*) ;; *) dump="$dir/$dump" ;; esac
  [ -f "$dump" ] || { log "no dump $dump"; exit 1; }
  pgpass
  # TimescaleDB documents pre/post restore around pg_restore; plain PostgreSQL has neither.
  timescale=$(psql -tAc "SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'")
  [ "$timescale" = 1 ] && psql -q -v ON_ERROR_STOP=1 -c "SELECT timescaledb_pre_restore();" > /dev/null
  start=$(date +%s)
  status=0
  pg_restore --clean --if-exists --no-owner -d "$PGDATABASE" "$dump" || status=$?
  [ "$timescale" = 1 ] && psql -q -v ON_ERROR_STOP=1 -c "SELECT timescaledb_post_restore();" > /dev/null
  log "restored $dump into $PGDATABASE in $(($(date +%s) - start)) s (pg_restore exit $status)"
  return $status
}

case "${1:-}" in
  serve) serve ;;
  once) once ;;
  health) health ;;
  newest) good_dumps | tail -n 1 ;;
  restore) restore "${2:?name the dump}" ;;
  *) echo "usage: $0 serve|once|health|newest|restore DUMP" >&2; exit 2 ;;
esac
