#!/bin/sh
# Backups of the maricusco database, run in a container of the PostgreSQL image the stack runs, so
# the tools match the server. It logs in as the backup role: replication and reading all data.
#
#   backup.sh serve            the service (the container's command): WAL streamed without pause
#                              into the archive, a base backup and a logical dump every interval,
#                              the archive's state checked every few seconds and served as metrics
#   backup.sh once             a logical dump now (./deploy.sh <stack> backup)
#   backup.sh base             a base backup now (./deploy.sh <stack> backup)
#   backup.sh health           the healthcheck: see health() below
#   backup.sh list             every restore point, as `./deploy.sh <stack> restore --list` shows it
#   backup.sh plan WHAT        resolve and verify in full what a restore would use, touching nothing
#   backup.sh cat DUMP         a dump on stdout, for a logical restore run by the database's container
#   backup.sh pause | resume [--new-archive] | adopt
#                              stop streaming around a physical restore; go on (in a new archive)
#   backup.sh restore-data ... the physical restore itself, in a one-off container that mounts the
#                              database's volume too (./deploy.sh <stack> restore)
#
# The backups volume:
#   maricusco-<stamp>.dump     logical dumps (pg_dump -Fc), each read back with pg_restore --list
#   pitr/<archive>/            one archive per cluster lineage: IDENTITY (system id, timeline,
#                              start), wal/ (pg_receivewal, through the slot BACKUP_WAL_SLOT),
#                              base-<stamp>/ (pg_basebackup, checked with pg_verifybackup) and
#                              base-<stamp>.done (when it was consistent, where its WAL starts)
#   replaced/before-restore-<stamp>/  the data directory a physical restore replaced, with its
#                              checksums beside it (.sha256), so that `restore` can take it back
# <stamp> is UTC, sortable. BACKUP_KEEP base backups, dumps and replaced directories are kept, and
# exactly the WAL the kept base backups need. The password is read from BACKUP_PASSWORD_FILE into
# a private pgpass file, never onto a command line or into the environment.
set -eu
# Debian's packages keep the server's tools (pg_verifybackup, pg_waldump) off the PATH.
for bin in /usr/lib/postgresql/*/bin; do [ -d "$bin" ] && PATH=$PATH:$bin; done
dir=${BACKUP_DIR:-/backups}
pitr=$dir/pitr
replaced=$dir/replaced
interval=${BACKUP_INTERVAL_SECONDS:-86400}
keep=${BACKUP_KEEP:-7}
slot=${BACKUP_WAL_SLOT:-maricusco_wal}
max_age=${BACKUP_WAL_MAX_AGE_SECONDS:-120}
retained_limit=${BACKUP_WAL_RETAINED_LIMIT_BYTES:-1073741824}
metrics_port=${BACKUP_METRICS_PORT:-9188}
tick=${BACKUP_CHECK_SECONDS:-5}
tmp=${TMPDIR:-/tmp}
pgdata=${PGDATA:-/var/lib/postgresql/data}
ts='[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]T[0-9][0-9][0-9][0-9][0-9][0-9]Z'

log() { echo "maricusco-backup: $*" >&2; }
fail() {
  log "$*"
  exit 1
}
# refuse: a restore that will not go on; the database has not been touched.
refuse() {
  log "REFUSED: $*; the database is untouched"
  exit 3
}
now() { date -u +%s; }
stamp() { date -u +%Y%m%dT%H%M%SZ; }
iso() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ; }

pgpass() {
  umask 077
  printf '*:*:*:*:%s\n' "$(sed 's/[\\:]/\\&/g' "$BACKUP_PASSWORD_FILE")" >"$tmp/pgpass"
  export PGPASSFILE="$tmp/pgpass"
}

# unique_stamp PATTERN: a stamp for which no path matches PATTERN (a glob) with %s replaced by it.
unique_stamp() {
  s=$(stamp)
  # shellcheck disable=SC2059
  while exists "$(printf "$1" "$s")"; do
    sleep 1
    s=$(stamp)
  done
  echo "$s"
}

# exists GLOB: whether any path matches.
exists() {
  # shellcheck disable=SC2086
  for f in $1; do [ -e "$f" ] && return 0; done
  return 1
}

# hexsegs: each WAL segment name on stdin (24 hex digits) with its position, "<name> <segno>",
# for 16 MiB segments (PostgreSQL's default): 256 segments make one 4 GiB log file.
hexsegs() {
  awk 'function hex(s,  i, n) { n = 0; for (i = 1; i <= length(s); i++) n = n * 16 + index("0123456789ABCDEF", substr(s, i, 1)) - 1; return n }
       length($0) == 24 { print $0, hex(substr($0, 9, 8)) * 256 + hex(substr($0, 17, 8)) }'
}

# --- logical dumps -------------------------------------------------------------------------

good_dumps() { find "$dir" -maxdepth 1 -name 'maricusco-*.dump' 2>/dev/null | sort; }

# once: a verified dump now; prints its name.
once() (
  pgpass
  s=$(unique_stamp "$dir/maricusco-%s.dump")
  final="$dir/maricusco-$s.dump"
  partial="$dir/.maricusco-$s.dump.partial"
  start=$(now)
  if ! pg_dump -Fc -f "$partial"; then
    rm -f "$partial"
    fail "FAILED: pg_dump of $PGDATABASE on $PGHOST did not complete"
  fi
  if ! pg_restore --list "$partial" >/dev/null; then
    rm -f "$partial"
    fail "FAILED: the new dump does not read back with pg_restore --list; it was discarded"
  fi
  mv "$partial" "$final"
  log "$final: $(wc -c <"$final") bytes in $(($(now) - start)) s, verified"
  status=0
  for f in $(good_dumps); do
    if ! pg_restore --list "$f" >/dev/null 2>&1; then
      mv "$f" "$f.corrupt"
      log "FAILED verification: $f does not read back with pg_restore --list; renamed $f.corrupt, the other dumps are kept"
      status=1
    fi
  done
  good_dumps | sort -r | tail -n +$((keep + 1)) | while read -r old; do
    rm -f "$old"
    log "removed $old: $keep newer good dumps are kept"
  done
  basename "$final"
  exit $status
)

# --- the WAL archive -----------------------------------------------------------------------

archives() { find "$pitr" -mindepth 1 -maxdepth 1 -type d -name "$ts" 2>/dev/null | sort; }
current() { archives | tail -n 1; }

# identity: "<system id> <timeline>" of the database, over the replication protocol.
identity() { psql "dbname=$PGDATABASE replication=true" -tA -F ' ' -c IDENTIFY_SYSTEM 2>/dev/null | awk 'NF >= 2 { print $1, $2 }'; }

# new_archive SYSID TIMELINE REASON: starts an archive for the database as it is now.
new_archive() {
  a=$pitr/$(unique_stamp "$pitr/%s")
  mkdir -p "$a/wal"
  echo "$1 $2 $(now)" >"$a/IDENTITY"
  log "new archive $(basename "$a") (system $1, timeline $2): $3"
  echo "$a"
}

# bases: "<name> <archive dir>" of every good base backup, oldest first.
bases() {
  find "$pitr" -mindepth 2 -maxdepth 2 -name "base-$ts.done" 2>/dev/null |
    while read -r f; do echo "$(basename "$f" .done) $(dirname "$f")"; done | sort
}

# field FILE KEY: a value of a key=value file.
field() { sed -n "s/^$2=//p" "$1"; }

# archive_of_database: the current archive, once it holds the database as it is (its system and
# timeline): a base backup restored with another archive's WAL would not recover. It waits while
# the receiver starts the database's archive (a new timeline, or after a restore or adopt), and
# refuses a foreign database: one that replaced the archived cluster, until restore or adopt.
archive_of_database() {
  deadline=$(($(now) + 60))
  while :; do
    a=$(current)
    [ -n "$a" ] || fail "FAILED: no archive yet: the WAL receiver has not reached the database"
    id=$(identity) || id=
    [ -n "$id" ] || fail "FAILED: the database at $PGHOST does not answer"
    read -r sys tli _ <"$a/IDENTITY"
    if [ "$sys $tli" = "$id" ]; then
      echo "$a"
      return
    fi
    if [ "$sys" != "${id%% *}" ] && [ ! -e "$tmp/new-archive" ]; then
      fail "FAILED: FOREIGN DATABASE: $PGHOST is system ${id%% *}, the archive holds system $sys; no base backup is taken of it into that archive. Run ./deploy.sh <stack> restore --latest (the archived data back) or ./deploy.sh <stack> backup --new-archive (archive this database from now on)"
    fi
    [ "$(now)" -lt "$deadline" ] || fail "FAILED: the receiver has not started an archive of the database (system $id) after 60 s: $(cat "$tmp/receiver" 2>/dev/null)"
    sleep 1
  done
}

# base [--first]: a base backup now, verified with pg_verifybackup before it counts; one at a
# time. --first: only when the current archive has none yet.
base() (
  pgpass
  exec 9>"$tmp/base.lock"
  flock 9
  a=$(archive_of_database) || exit 1
  if [ "${1:-}" = --first ] && exists "$a/base-$ts.done"; then
    exit 0
  fi
  s=$(unique_stamp "$pitr/*/base-%s")
  partial="$a/.base-$s.partial"
  start=$(now)
  if ! pg_basebackup -D "$partial" -Fp -X stream -c fast --manifest-checksums=CRC32C --no-password; then
    rm -rf "$partial"
    fail "FAILED: pg_basebackup did not complete"
  fi
  # When it was consistent, by the clock recovery compares commit times with: the server's, to
  # the microsecond (a second's precision would refuse an instant just after it). The backup
  # ended before this question, so the answer is never early.
  end=$(psql -tAc "SELECT extract(epoch FROM clock_timestamp())" 2>/dev/null) || end=$(($(now) + 1))
  if ! pg_verifybackup -q "$partial"; then
    rm -rf "$partial"
    fail "FAILED: the new base backup does not pass pg_verifybackup; it was discarded"
  fi
  first=$(sed -n 's/^START WAL LOCATION: .*(file \([0-9A-F]*\))$/\1/p' "$partial/backup_label")
  bytes=$(($(du -sk "$partial" | cut -f1) * 1024))
  mv "$partial" "$a/base-$s"
  printf 'start=%s\nend=%s\nfirst_wal=%s\nbytes=%s\n' "$start" "$end" "$first" "$bytes" >"$a/base-$s.done"
  log "base-$s: $bytes bytes in $((${end%%.*} - start)) s, verified with pg_verifybackup; WAL from $first"
  retain
  echo "base-$s"
)

# retain: keeps the newest BACKUP_KEEP base backups and replaced directories, the archives they
# belong to (and the current one), and in each archive the WAL from its oldest base backup on.
retain() {
  bases | sort -r | tail -n +$((keep + 1)) | while read -r name a; do
    rm -rf "${a:?}/$name" "$a/$name.done"
    log "removed $name: $keep newer base backups are kept"
  done
  cur=$(current)
  for a in $(archives); do
    oldest=$(find "$a" -maxdepth 1 -name "base-$ts.done" | sort | head -n 1)
    if [ -z "$oldest" ]; then
      [ "$a" = "$cur" ] && continue
      rm -rf "$a"
      log "removed the archive $(basename "$a"): no kept base backup needs it"
      continue
    fi
    first=$(field "$oldest" first_wal)
    # Segments are named by timeline and position, so every older one sorts before it.
    ls "$a/wal" | awk -v first="$first" 'length($0) == 24 && ($0 "") < (first "")' | while read -r seg; do
      rm -f "$a/wal/$seg"
    done
  done
  find "$replaced" -mindepth 1 -maxdepth 1 -type d -name "before-restore-$ts" 2>/dev/null | sort -r | tail -n +$((keep + 1)) |
    while read -r old; do
      rm -rf "$old" "$old.sha256"
      log "removed $(basename "$old"): $keep newer replaced directories are kept"
    done
}

# receive: streams WAL into the current archive for as long as the service runs. It never mixes
# two clusters in one archive: a database of another system (replaced by an empty one, say) is
# not archived until `restore` or `adopt` says what it is; a new timeline starts a new archive.
receive() {
  while :; do
    if [ -e "$tmp/paused" ]; then
      note "paused for a restore"
      sleep 1
      continue
    fi
    if ! id=$(identity) || [ -z "$id" ]; then
      note "the database at $PGHOST does not answer"
      sleep "$tick"
      continue
    fi
    # shellcheck disable=SC2086
    set -- $id
    a=$(current) why=
    if [ -e "$tmp/new-archive" ]; then
      why=$(cat "$tmp/new-archive")
    elif [ -z "$a" ]; then
      why="the first archive"
    else
      read -r sys tli _ <"$a/IDENTITY"
      if [ "$sys" != "$1" ]; then
        note "FOREIGN DATABASE: $PGHOST is system $1, the archive holds system $sys; it was replaced (by an empty one after its volume was lost?). Nothing is archived until you run ./deploy.sh <stack> restore --latest (the archived data back) or ./deploy.sh <stack> backup --new-archive (archive this database from now on; the old archive is kept)"
        sleep "$tick"
        continue
      fi
      [ "$tli" = "$2" ] || why="the timeline moved from $tli to $2"
    fi
    if [ -n "$why" ]; then
      psql -q -c "SELECT pg_drop_replication_slot('$slot') FROM pg_replication_slots WHERE slot_name = '$slot' AND NOT active" >/dev/null 2>&1 || true
      a=$(new_archive "$1" "$2" "$why")
      rm -f "$tmp/new-archive"
    fi
    if [ "$(psql -tAc "SELECT wal_status FROM pg_replication_slots WHERE slot_name = '$slot'" 2>/dev/null)" = lost ]; then
      echo "the slot $slot lost WAL the archive did not have (it retained more than max_slot_wal_keep_size)" >"$tmp/new-archive"
      note "slot lost: starting a new archive"
      continue
    fi
    if ! create_slot 2>"$tmp/receiver.err"; then
      note "cannot create the slot $slot: $(tail -n 1 "$tmp/receiver.err")"
      sleep "$tick"
      continue
    fi
    note "streaming into $(basename "$a")"
    pg_receivewal -D "$a/wal" --slot "$slot" --synchronous --no-loop --status-interval 1 --no-password &
    receiver=$!
    echo "$receiver" >"$tmp/receiver.pid"
    if [ -z "$(find "$a" -maxdepth 1 -name "base-$ts.done" | head -n 1)" ]; then
      (sleep 2 && base --first >/dev/null) || log "the first base backup of $(basename "$a") failed; it is tried again at the next start of the receiver" &
    fi
    status=0
    wait "$receiver" || status=$?
    rm -f "$tmp/receiver.pid"
    note "pg_receivewal ended (exit $status)"
    sleep 1
  done
}

# create_slot: the slot, holding WAL from the moment it exists. pg_receivewal --create-slot
# reserves none until the receiver's first reply, and a checkpoint in between (the first base
# backup's) invalidates the slot as having lost the WAL the receiver is about to ask for.
create_slot() {
  [ -z "$(psql -tAc "SELECT 1 FROM pg_replication_slots WHERE slot_name = '$slot'")" ] || return 0
  psql "dbname=$PGDATABASE replication=true" -q -c "CREATE_REPLICATION_SLOT $slot PHYSICAL RESERVE_WAL" >/dev/null
}

# note WHY: what the receiver is doing, for health and metrics.
note() { echo "$*" >"$tmp/receiver"; }

# --- health and metrics --------------------------------------------------------------------

# check: reads the database's WAL position and the slot's, and records the archive's state:
#   age       how long the oldest WAL the server has written, but the archive does not hold,
#             has waited (0: the archive holds everything); one check's resolution
#   retained  bytes of WAL the slot holds back on the database's disk
#   receiving whether the receiver streams (the slot is active)
check() {
  t=$(now)
  row=$(psql -tA -F ' ' -c "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint,
      coalesce(pg_wal_lsn_diff(s.restart_lsn, '0/0')::bigint, -1), coalesce(s.active, false)
      FROM (SELECT 1) AS one LEFT JOIN pg_replication_slots s ON s.slot_name = '$slot'" 2>/dev/null) || row=
  db=0 retained=0 receiving=0
  if [ -n "$row" ]; then
    # shellcheck disable=SC2086
    set -- $row
    db=1
    [ "$3" = t ] && receiving=1
    [ "$2" -ge 0 ] && retained=$(($1 - $2))
    # Each check's position stays listed until the archive holds it.
    echo "$t $1" >>"$tmp/positions"
    awk -v held="$2" '$2 > held' "$tmp/positions" | tail -n 200 >"$tmp/positions.new"
    mv "$tmp/positions.new" "$tmp/positions"
  fi
  oldest=$(head -n 1 "$tmp/positions" 2>/dev/null | cut -d ' ' -f 1)
  age=$((${oldest:+$t - $oldest}+0))
  down_since=$(cat "$tmp/receiver-down-since" 2>/dev/null || echo "$t")
  if [ "$receiving" = 1 ]; then
    rm -f "$tmp/receiver-down-since"
  elif [ ! -e "$tmp/receiver-down-since" ]; then
    echo "$t" >"$tmp/receiver-down-since"
  fi
  down=0
  [ "$receiving" = 1 ] || down=$((t - down_since))
  newest_base=$(bases | tail -n 1)
  base_end=0 base_bytes=0
  if [ -n "$newest_base" ]; then
    done_file="${newest_base#* }/${newest_base%% *}.done"
    base_end=$(field "$done_file" end | cut -d . -f 1)
    base_bytes=$(field "$done_file" bytes)
  fi
  dump=$(good_dumps | tail -n 1)
  dump_at=0
  [ -z "$dump" ] || dump_at=$(stat -c %Y "$dump")
  cat >"$tmp/state.new" <<EOF
checked=$t
database=$db
receiving=$receiving
down=$down
age=$age
retained=$retained
base_end=$base_end
dump_at=$dump_at
EOF
  mv "$tmp/state.new" "$tmp/state"
  cat >"$tmp/metrics.new" <<EOF
# HELP maricusco_backup_wal_archive_age_seconds How long the oldest WAL written by the database but not yet in the archive has waited; 0 when the archive holds everything.
# TYPE maricusco_backup_wal_archive_age_seconds gauge
maricusco_backup_wal_archive_age_seconds $age
# HELP maricusco_backup_wal_slot_retained_bytes WAL the replication slot holds back on the database's disk.
# TYPE maricusco_backup_wal_slot_retained_bytes gauge
maricusco_backup_wal_slot_retained_bytes $retained
# HELP maricusco_backup_wal_receiver_up Whether WAL is being streamed into the archive.
# TYPE maricusco_backup_wal_receiver_up gauge
maricusco_backup_wal_receiver_up $receiving
# HELP maricusco_backup_wal_receiver_down_seconds How long no WAL has been streamed into the archive.
# TYPE maricusco_backup_wal_receiver_down_seconds gauge
maricusco_backup_wal_receiver_down_seconds $down
# HELP maricusco_backup_database_up Whether the database answered the last check.
# TYPE maricusco_backup_database_up gauge
maricusco_backup_database_up $db
# HELP maricusco_backup_base_backup_timestamp_seconds When the newest good base backup was consistent.
# TYPE maricusco_backup_base_backup_timestamp_seconds gauge
maricusco_backup_base_backup_timestamp_seconds $base_end
# HELP maricusco_backup_base_backup_size_bytes Size of the newest good base backup.
# TYPE maricusco_backup_base_backup_size_bytes gauge
maricusco_backup_base_backup_size_bytes $base_bytes
# HELP maricusco_backup_dump_timestamp_seconds When the newest good logical dump was written.
# TYPE maricusco_backup_dump_timestamp_seconds gauge
maricusco_backup_dump_timestamp_seconds $dump_at
EOF
  mv "$tmp/metrics.new" "$tmp/metrics"
}

# health: healthy while WAL reaches the archive within BACKUP_WAL_MAX_AGE_SECONDS, the slot holds
# back less than BACKUP_WAL_RETAINED_LIMIT_BYTES, and the newest base backup and dump are younger
# than 1.5 intervals (or the service started less than one interval ago).
health() {
  t=$(now)
  started=$(cat "$tmp/started" 2>/dev/null || echo 0)
  [ -s "$tmp/state" ] || {
    echo "the archive has not been checked yet"
    [ $((t - started)) -lt "$max_age" ]
    return
  }
  checked=0 down=0 age=0 retained=0 base_end=0 dump_at=0
  . "$tmp/state"
  why=$(cat "$tmp/receiver" 2>/dev/null || true)
  problems=
  [ $((t - checked)) -le $((tick * 6)) ] || problems="$problems; the archive was last checked $((t - checked)) s ago"
  [ "$age" -le "$max_age" ] || problems="$problems; WAL written $age s ago is not in the archive yet (limit $max_age s): $why"
  [ "$down" -le "$max_age" ] || problems="$problems; no WAL has been streamed for $down s (limit $max_age s): $why"
  [ "$retained" -le "$retained_limit" ] || problems="$problems; the slot $slot holds back $retained bytes of WAL on the database's disk (limit $retained_limit): the receiver is stuck; see docs/backups.md"
  if [ $((t - started)) -ge "$interval" ]; then
    [ $((t - base_end)) -le $((interval * 3 / 2)) ] || problems="$problems; the newest good base backup is $((t - base_end)) s old: more than 1.5 intervals"
    [ $((t - dump_at)) -le $((interval * 3 / 2)) ] || problems="$problems; the newest good dump is $((t - dump_at)) s old: more than 1.5 intervals"
  fi
  if [ -n "$problems" ]; then
    echo "${problems#; }"
    return 1
  fi
}

# metrics_http: one HTTP exchange on stdin and stdout (busybox nc -e), answering the metrics.
metrics_http() {
  while read -r line; do
    case $line in '' | "$(printf '\r')") break ;; esac
  done
  body=$(cat "$tmp/metrics" 2>/dev/null || true)
  printf 'HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: %s\r\nConnection: close\r\n\r\n%s\n' \
    "$((${#body} + 1))" "$body"
}

# --- the service ---------------------------------------------------------------------------

serve() {
  pgpass
  now >"$tmp/started"
  mkdir -p "$pitr"
  children=
  trap 'kill $children $(cat "$tmp/receiver.pid" 2>/dev/null) 2>/dev/null; exit 0' TERM INT
  receive &
  children="$children $!"
  (while :; do
    check || true
    sleep "$tick"
  done) &
  children="$children $!"
  # One exchange per connection (busybox nc, which both the upstream and Debian images ship).
  (while :; do busybox nc -l -p "$metrics_port" -e timeout 5 /bin/sh "$0" metrics-http || sleep 1; done) &
  children="$children $!"
  # A restart (a redeploy, or a new database after a loss) does not back up again while the
  # newest good dump is younger than one interval: the schedule goes on from it, and a database
  # that was just recreated empty does not push good dumps out before they are restored.
  newest=$(good_dumps | tail -n 1)
  if [ -n "$newest" ]; then
    due=$((interval - ($(now) - $(stat -c %Y "$newest"))))
    if [ "$due" -gt 0 ]; then
      log "the newest good dump is $newest; the next backups are due in $due s, then every $interval s, keeping $keep"
      sleep "$due" &
      wait $!
    fi
  fi
  log "a dump and a base backup now, then every $interval s, keeping $keep"
  while :; do
    once >/dev/null || log "the dump failed; the healthcheck turns unhealthy unless a good one follows in time"
    base >/dev/null || log "the base backup failed; the healthcheck turns unhealthy unless a good one follows in time"
    sleep "$interval" &
    wait $!
  done
}

pause() {
  touch "$tmp/paused"
  pid=$(cat "$tmp/receiver.pid" 2>/dev/null || true)
  [ -z "$pid" ] || kill "$pid" 2>/dev/null || true
  log "WAL streaming paused"
}

# resume [--new-archive]: streams again, into a new archive after a physical restore (the
# restored cluster continues another history than the archive in use); prints the archive in use
# before, for await-base. It is read while the receiver is still paused: once it is not, the
# receiver may start the new archive before this prints, and await-base would wait for one newer.
resume() {
  before=$(basename "$(current)")
  [ "${1:-}" != --new-archive ] || echo "a restore replaced the database" >"$tmp/new-archive"
  rm -f "$tmp/paused"
  log "WAL streaming resumed${1:+ in a new archive}"
  echo "$before"
}

# await_base ARCHIVE [SECONDS]: waits until an archive newer than ARCHIVE has its first base
# backup, so that what a restore brought back can itself be restored to any later instant.
await_base() {
  deadline=$(($(now) + ${2:-600}))
  while [ "$(now)" -lt "$deadline" ]; do
    a=$(current)
    if [ "$(basename "$a")" != "$1" ] && exists "$a/base-$ts.done"; then
      log "archived again: $(basename "$a") from $(basename "$(bases | awk -v a="$a" '$2 == a { print $1 }' | head -n 1)")"
      return
    fi
    sleep 1
  done
  fail "WARNING: no base backup of the restored database after ${2:-600} s: until one is taken, it cannot be restored to a later instant; run ./deploy.sh <stack> backup"
}

# adopt: archives the database from now on when the current archive holds another system's (a
# logical restore into a database that replaced a lost one); the old archive is kept.
adopt() {
  pgpass
  id=$(identity)
  a=$(current)
  if [ -n "$a" ] && [ "$(cut -d ' ' -f 1 "$a/IDENTITY")" != "${id%% *}" ]; then
    echo "the database was replaced and is adopted" >"$tmp/new-archive"
    pid=$(cat "$tmp/receiver.pid" 2>/dev/null || true)
    [ -z "$pid" ] || kill "$pid" 2>/dev/null || true
    log "the database (system ${id%% *}) is archived from now on, in a new archive; the old one is kept"
  fi
}

# --- restores ------------------------------------------------------------------------------

# list: every restore point, newest last.
list() {
  for f in $(good_dumps); do
    echo "dump  $(basename "$f")  logical dump of $(iso "$(stat -c %Y "$f")"), $(wc -c <"$f") bytes"
  done
  bases | while read -r name a; do
    next=$(archives | awk -v a="$a" 'found { print; exit } $0 == a { found = 1 }')
    until="now (streaming)"
    [ -z "$next" ] || until=$(iso "$(cut -d ' ' -f 3 "$next/IDENTITY")")
    echo "base  $name  consistent at $(iso "$(field "$a/$name.done" end | cut -d . -f 1)"); with its archive, any time until $until"
  done
  find "$replaced" -mindepth 1 -maxdepth 1 -type d -name "before-restore-$ts" 2>/dev/null | sort | while read -r r; do
    echo "copy  $(basename "$r")  the data directory a restore replaced at $(iso "$(stat -c %Y "$r.sha256")")"
  done
}

# plan WHAT: resolves WHAT (--to EPOCH[.mmm], --latest, or a name from the list) into what a
# restore uses, verifies it in full, and prints one line for deploy.sh:
#   logical DUMP | physical ARCHIVE BASE time EPOCH | physical ARCHIVE BASE latest|immediate | copy NAME
plan() {
  case ${1:-} in
    --to)
      case ${2:-} in [0-9]*) ;; *) refuse "--to needs a time" ;; esac
      target=${2%%.*}
      [ "$target" -le "$(now)" ] || refuse "$(iso "$target") is in the future"
      a=$(archives | while read -r x; do [ "$(cut -d ' ' -f 3 "$x/IDENTITY")" -le "$target" ] && echo "$x"; done | tail -n 1)
      [ -n "$a" ] || refuse "$(iso "$target") is before the oldest archive"
      name=$(bases | awk -v a="$a" '$2 == a { print $1 }' | while read -r n; do
        awk -v end="$(field "$a/$n.done" end)" -v target="$2" 'BEGIN { exit !(end + 0 < target + 0) }' && echo "$n"
      done | tail -n 1)
      [ -n "$name" ] || refuse "no base backup was consistent before $(iso "$target") in the archive of that time; see ./deploy.sh <stack> restore --list"
      verify_base "$a" "$name"
      echo "physical $(basename "$a") $name time $2"
      ;;
    --latest)
      a=$(current)
      [ -n "$a" ] || refuse "there is no WAL archive"
      name=$(bases | awk -v a="$a" '$2 == a { print $1 }' | tail -n 1)
      [ -n "$name" ] || refuse "the archive in use has no base backup yet"
      verify_base "$a" "$name"
      echo "physical $(basename "$a") $name latest"
      ;;
    maricusco-$ts.dump)
      [ -f "$dir/$1" ] || refuse "no dump $1; see ./deploy.sh <stack> restore --list"
      pg_restore -f /dev/null "$dir/$1" 2>"$tmp/verify.err" || refuse "$1 does not read back in full ($(tail -n 1 "$tmp/verify.err"))"
      echo "logical $1"
      ;;
    base-$ts)
      found=$(bases | awk -v n="$1" '$1 == n { print $2 }')
      [ -n "$found" ] || refuse "no base backup $1; see ./deploy.sh <stack> restore --list"
      verify_base "$found" "$1"
      echo "physical $(basename "$found") $1 immediate"
      ;;
    before-restore-$ts)
      [ -d "$replaced/$1" ] && [ -f "$replaced/$1.sha256" ] || refuse "no replaced data directory $1; see ./deploy.sh <stack> restore --list"
      (cd "$replaced/$1" && sha256sum -c "../$1.sha256" >/dev/null 2>&1) || refuse "$1 does not match its checksums"
      echo "copy $1"
      ;;
    *) refuse "$(printf '%s' "${1:-}" | tr -c '[:alnum:]._-' '?') is not a restore point: name one from ./deploy.sh <stack> restore --list, or use --to TIME or --latest" ;;
  esac
}

# verify_base ARCHIVE NAME: the base backup against its manifest, and the archive's WAL from it
# on without a gap.
verify_base() {
  pg_verifybackup -q "$1/$2" 2>"$tmp/verify.err" || refuse "$2 does not pass pg_verifybackup ($(tail -n 1 "$tmp/verify.err"))"
  first=$(field "$1/$2.done" first_wal)
  gap=$(ls "$1/wal" | sed 's/\.partial$//' | awk -v first="$first" 'length($0) == 24 && ($0 "") >= (first "")' | sort -u |
    hexsegs | awk 'NR > 1 && $2 != last + 1 { print $1; exit } { last = $2 }')
  [ -n "$(ls "$1/wal" | awk -v first="$first" '($0 "") >= (first "")')" ] || refuse "the archive of $2 holds no WAL from $first on"
  [ -z "$gap" ] || refuse "the archive of $2 misses WAL before $gap"
}

# pg_time EPOCH[.mmm]: the instant as PostgreSQL reads it while it starts, when it takes no time
# zone abbreviation (Z): '2026-12-02 13:45:10.250+00'.
pg_time() {
  ms=000
  case $1 in *.*) ms=$(printf '%s000' "${1#*.}" | cut -c 1-3) ;; esac
  echo "$(date -u -d "@${1%%.*}" '+%Y-%m-%d %H:%M:%S').$ms+00"
}

# cat DUMP: a good dump on stdout.
cat_dump() {
  case $1 in maricusco-$ts.dump) [ -f "$dir/$1" ] && exec cat "$dir/$1" ;; esac
  refuse "no dump $1"
}

# restore_data [--discard-current] physical ARCHIVE BASE time|latest|immediate [TIME] | copy NAME
# Runs in a one-off container that mounts the database's volume at PGDATA, with postgres stopped.
# It sets the current data directory aside (unless told to discard a failed restore's), then lays
# down the base backup and the archive's WAL with recovery settings, or the copy as it was.
restore_data() {
  keep_current=true
  if [ "$1" = --discard-current ]; then
    keep_current=false
    shift
  fi
  kind=$1
  shift
  # Everything is checked before anything is set aside or deleted.
  case "$kind:${1:-}:${2:-}:${3:-}" in
    physical:$ts:base-$ts:time | physical:$ts:base-$ts:latest | physical:$ts:base-$ts:immediate)
      [ -f "$pitr/$1/$2.done" ] || refuse "no base backup $2 in the archive $1"
      [ "$3" != time ] || case ${4:-} in [0-9]*) ;; *) refuse "no target time" ;; esac
      ;;
    copy:before-restore-$ts::) [ -d "$replaced/$1" ] || refuse "no replaced data directory $1" ;;
    *) refuse "restore-data takes physical ARCHIVE BASE time|latest|immediate [EPOCH] or copy NAME" ;;
  esac
  size=$(du -sk "$pgdata" | cut -f1)
  free=$(df -Pk "$dir" | awk 'NR == 2 { print $4 }')
  if $keep_current && [ -n "$(ls -A "$pgdata")" ]; then
    [ "$free" -gt $((size + size / 10)) ] || refuse "the backups volume has $free KiB free, and setting the data directory ($size KiB) aside needs more"
    name=before-restore-$(unique_stamp "$replaced/before-restore-%s")
    mkdir -p "$replaced"
    cp -a "$pgdata" "$replaced/.$name.partial"
    # Owned as the volume is, so the backup service can verify it without any capability.
    chown -R "$(stat -c %u:%g "$dir")" "$replaced/.$name.partial"
    (cd "$replaced/.$name.partial" && find . -type f -exec sha256sum {} +) >"$replaced/.$name.sha256"
    mv "$replaced/.$name.partial" "$replaced/$name"
    mv "$replaced/.$name.sha256" "$replaced/$name.sha256"
    log "the data directory it replaces is kept as $name"
    echo "$name"
  fi
  find "$pgdata" -mindepth 1 -delete
  case $kind in
    physical)
      a=$pitr/$1
      cp -a "$a/$2/." "$pgdata/"
      rm -f "$pgdata/backup_manifest"
      first=$(field "$a/$2.done" first_wal)
      ls "$a/wal" | while read -r f; do
        case $f in
          *.history) cp "$a/wal/$f" "$pgdata/pg_wal/" ;;
          *.partial) cp "$a/wal/$f" "$pgdata/pg_wal/${f%.partial}" ;;
          *) [ ${#f} -ne 24 ] || [ "$(printf '%s\n%s\n' "$first" "$f" | sort | head -n 1)" != "$first" ] || cp "$a/wal/$f" "$pgdata/pg_wal/" ;;
        esac
      done
      conf=$pgdata/postgresql.auto.conf
      sed -i '/^# maricusco restore begin$/,/^# maricusco restore end$/d' "$conf"
      {
        echo "# maricusco restore begin"
        # The archive's WAL is in pg_wal already; recovery reads it there when the command fails.
        echo "restore_command = 'false'"
        case $3 in
          # PostgreSQL takes no time zone abbreviation (Z) while it starts: the offset is numeric.
          time) printf "recovery_target_time = '%s'\n" "$(pg_time "$4")" ;;
          immediate) echo "recovery_target = 'immediate'" ;;
        esac
        echo "recovery_target_action = 'promote'"
        echo "# maricusco restore end"
      } >>"$conf"
      touch "$pgdata/recovery.signal"
      ;;
    copy) cp -a "$replaced/$1/." "$pgdata/" ;;
  esac
  chown -R "${PGDATA_OWNER:-postgres:postgres}" "$pgdata"
  chmod 700 "$pgdata"
}

case "${1:-}" in
  serve) serve ;;
  once) once ;;
  base) base "${2:-}" ;;
  health) health ;;
  metrics-http) metrics_http ;;
  list) list ;;
  plan)
    shift
    pgpass
    plan "$@"
    ;;
  cat) cat_dump "${2:?name the dump}" ;;
  pause) pause ;;
  resume) resume "${2:-}" ;;
  await-base) await_base "${2:?name the archive in use before}" "${3:-}" ;;
  adopt) adopt ;;
  restore-data)
    shift
    restore_data "$@"
    ;;
  *)
    echo "usage: $0 serve|once|base|health|list|plan WHAT|cat DUMP|pause|resume [--new-archive]|adopt|restore-data ..." >&2
    exit 2
    ;;
esac
