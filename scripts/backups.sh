#!/usr/bin/env bash
# The backup and restore commands of deploy.sh, run on the stack's Docker host with the docker CLI.
#
#   deploy.sh <stack> backup [--new-archive]
#       a logical dump and a base backup now; --new-archive also starts a new WAL archive for the
#       database as it is (after it was replaced by one the archive does not hold)
#   deploy.sh <stack> restore --list
#   deploy.sh <stack> restore --to TIME | --latest | NAME  [--yes]
#       TIME is RFC 3339 (2026-12-02T13:45:10.250Z): the cluster as it was at that instant;
#       --latest: as far as the archive goes (after a lost volume); NAME: a dump (a logical restore
#       in one transaction), a base backup, or a data directory a restore replaced.
#
# A restore never makes things worse: it takes only names from its own list, verifies in full
# what it will use before it touches anything (and says the database is untouched when it
# refuses), keeps what it replaces under a name `restore` takes back, and stops the app around a
# physical restore. A physical restore that fails is rolled back to the data it replaced.
set -euo pipefail
stack=$1 action=$2
shift 2
PULUMI=${PULUMI:?}
ts='[0-9]{8}T[0-9]{6}Z'

die() {
  echo "$*" >&2
  exit 2
}
output() { "$PULUMI" stack output "$1" --stack "$stack" 2>/dev/null; }
# printable: a value as it may be shown, without control characters.
printable() { printf '%s' "$1" | LC_ALL=C tr -c '[:print:]' '?'; }

backup_workload=$(output backupContainer) ||
  die "the $stack stack runs no backup service: run './deploy.sh $stack up' first, with backup.enabled true (the default)"
host=$(output dockerHost)
orchestrator=$(output orchestrator)
docker() { command docker --host "$host" "$@"; }

# container_of WORKLOAD: the container that runs it: itself on one engine, its running task on
# a swarm (on this host: dockerHost must be the data node, where the stateful services run).
container_of() {
  if [ "$orchestrator" != swarm ]; then
    echo "$1"
    return
  fi
  local c
  c=$(docker ps -q --filter "label=com.docker.swarm.service.name=$1" | head -n 1)
  [ -n "$c" ] || die "no task of $1 runs on $host: point dockerHost at the node labelled maricusco.data=true (docs/cluster.md)"
  echo "$c"
}

in_backup() { docker exec "$(container_of "$backup_workload")" /bin/sh /run/maricusco/backup.sh "$@"; }

if [ "$action" = backup ]; then
  case "${1:-}" in
    "") ;;
    --new-archive) in_backup adopt ;;
    *) die "backup takes [--new-archive], not $(printable "$1")" ;;
  esac
  in_backup once
  in_backup base
  exit
fi

yes=false what=() list=false
while [ $# -gt 0 ]; do
  case "$1" in
    --yes | -y) yes=true ;;
    --list) list=true ;;
    --latest) what+=(--latest) ;;
    --to)
      [ $# -ge 2 ] || die "--to needs a time, e.g. --to 2026-12-02T13:45:10.250Z"
      what+=(--to "$2")
      shift
      ;;
    --to=*) what+=(--to "${1#--to=}") ;;
    -*) die "restore takes --list, --to TIME, --latest or a NAME, and --yes; not $(printable "$1")" ;;
    *) what+=("$1") ;;
  esac
  shift
done
if $list; then
  in_backup list
  exit
fi
case "${#what[@]}:${what[0]:-}" in
  1:--latest) ;;
  2:--to) ;;
  1:*) [[ "${what[0]}" =~ ^(maricusco-$ts\.dump|base-$ts|before-restore-$ts)$ ]] ||
    die "$(printable "${what[0]}") is not a restore point: name one from './deploy.sh $stack restore --list'" ;;
  *) die "restore one thing: --to TIME, --latest or a NAME from './deploy.sh $stack restore --list'" ;;
esac
if [ "${what[0]}" = --to ]; then
  time=${what[1]}
  [[ "$time" =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})$ ]] ||
    die "$(printable "$time") is not an RFC 3339 time; write e.g. 2026-12-02T13:45:10.250Z"
  epoch=$(date -u -d "$time" +%s.%3N 2>/dev/null || gdate -u -d "$time" +%s.%3N 2>/dev/null) ||
    die "cannot read $time with date -d (on macOS, install coreutils for gdate)"
  what=(--to "$epoch")
fi

if ! plan=$(in_backup plan "${what[@]}"); then
  echo "nothing was restored; the database is untouched" >&2
  exit 3
fi
read -r kind archive base recovery target <<<"$plan"
case "$kind" in
  logical) describe="the dump $archive (a logical restore, in one transaction)" ;;
  copy) describe="the data directory $archive, as it was when a restore replaced it" ;;
  physical)
    case "$recovery" in
      time) describe="the cluster as it was at $(date -u -d "@${target%%.*}" +%Y-%m-%dT%H:%M:%SZ 2>/dev/null || echo "$time"), from $base and the WAL archive" ;;
      latest) describe="the cluster up to the last archived WAL, from $base" ;;
      *) describe="the cluster as $base was" ;;
    esac
    ;;
  *) die "unexpected plan: $(printable "$plan")" ;;
esac
if ! $yes; then
  if [ ! -t 0 ]; then
    echo "restore replaces the $stack database's data: confirm with --yes when no one is at a terminal" >&2
    exit 2
  fi
  printf 'Restore %s into the %s stack? What it replaces is kept. Type the stack name to go on: ' "$describe" "$stack" >&2
  read -r answer
  [ "$answer" = "$stack" ] || {
    echo "not restored" >&2
    exit 1
  }
fi

postgres=$(output postgresWorkload)
apps=$(output appWorkloads)
psql_super() { docker exec -i "$(container_of "$postgres")" sh -c 'psql -v ON_ERROR_STOP=1 -X -q -tA -U "$POSTGRES_USER" -d "$POSTGRES_DB" "$@"' psql "$@"; }

restore_logical() {
  local before status=0 timescale
  before=$(in_backup once)
  echo "the data it replaces is kept as the dump $before" >&2
  timescale=$(psql_super -c "SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'")
  # TimescaleDB documents pre/post restore around pg_restore; plain PostgreSQL has neither.
  [ "$timescale" != 1 ] || psql_super -c "SELECT timescaledb_pre_restore()" >/dev/null
  in_backup cat "$archive" |
    docker exec -i "$(container_of "$postgres")" sh -c 'pg_restore -U "$POSTGRES_USER" -d "$POSTGRES_DB" --single-transaction --exit-on-error --clean --if-exists' ||
    status=$?
  [ "$timescale" != 1 ] || psql_super -c "SELECT timescaledb_post_restore()" >/dev/null
  if [ "$status" != 0 ]; then
    echo "the restore failed and was rolled back: the database is as it was (the dump $before holds it too)" >&2
    exit 1
  fi
  in_backup adopt
  echo "restored $archive; to take it back: ./deploy.sh $stack restore $before" >&2
}

# Swarm services are stopped by scaling them to 0 and started by scaling them back.
declare -A replicas=()
stop_workload() {
  if [ "$orchestrator" = swarm ]; then
    replicas[$1]=$(docker service inspect --format '{{.Spec.Mode.Replicated.Replicas}}' "$1")
    docker service scale --detach=false "$1=0" >/dev/null
  else
    docker stop --time 60 "$1" >/dev/null
  fi
}
start_workload() {
  if [ "$orchestrator" = swarm ]; then
    docker service scale --detach=false "$1=${replicas[$1]:-1}" >/dev/null
  else
    docker start "$1" >/dev/null
  fi
}

# one_off ARGS: backup.sh restore-data ARGS in a container of the database's image that mounts
# the database's volume and the backups, with only the capabilities a copy of it needs.
one_off() {
  local script
  script=$(mktemp)
  in_backup_cat_script >"$script"
  docker run --rm -i --network none --user 0 --cap-drop ALL --cap-add CHOWN --cap-add DAC_OVERRIDE --cap-add FOWNER \
    --security-opt no-new-privileges --label "maricusco.stack=$stack" --label maricusco.role=restore \
    --volume "$(output postgresVolume):/var/lib/postgresql/data" --volume "$(output backupVolume):/backups" \
    --env BACKUP_DIR=/backups --env PGDATA=/var/lib/postgresql/data \
    --entrypoint /bin/sh "$image" -s restore-data "$@" <"$script"
  rm -f "$script"
}
in_backup_cat_script() { docker exec "$(container_of "$backup_workload")" cat /run/maricusco/backup.sh; }

# recovered: waits until the database accepts its clients (recovery done, roles ready), or tells
# that recovery failed (the server stopped) or took longer than MARICUSCO_RESTORE_TIMEOUT seconds.
recovered() {
  local deadline=$((SECONDS + ${MARICUSCO_RESTORE_TIMEOUT:-900})) c
  sleep 2
  while [ $SECONDS -lt $deadline ]; do
    c=$(container_of "$postgres" 2>/dev/null) || c=
    if [ -n "$c" ]; then
      if docker exec "$c" sh -c 'test -f /var/run/postgresql/maricusco-roles-ready && pg_isready -q -h 127.0.0.1' 2>/dev/null; then
        return 0
      fi
      if [ "$orchestrator" != swarm ] && [ "$(docker inspect --format '{{.RestartCount}} {{.State.Running}}' "$c")" != "$restarts true" ]; then
        docker logs --tail 5 "$c" >&2 || true
        return 1
      fi
    fi
    sleep 1
  done
  return 1
}

restore_physical() {
  local aside start=$SECONDS
  image=$(docker inspect --format '{{.Image}}' "$(container_of "$postgres")")
  in_backup pause
  for app in $apps; do stop_workload "$app"; done
  stop_workload "$postgres"
  local laid=0
  if [ "$kind" = copy ]; then
    aside=$(one_off copy "$archive") || laid=$?
  else
    aside=$(one_off physical "$archive" "$base" "$recovery" ${target:+"$target"}) || laid=$?
  fi
  restarts=$(docker inspect --format '{{.RestartCount}}' "$(container_of "$postgres" 2>/dev/null || echo "$postgres")" 2>/dev/null || echo 0)
  if [ "$laid" != 0 ] && [ -z "$aside" ]; then
    # Refused before anything was set aside or deleted.
    start_workload "$postgres"
    recovered || true
    for app in $apps; do start_workload "$app"; done
    in_backup resume >/dev/null
    echo "nothing was restored; the database is untouched" >&2
    exit 3
  fi
  [ "$laid" = 0 ] && start_workload "$postgres"
  if [ "$laid" != 0 ] || ! recovered; then
    if [ -n "$aside" ]; then
      echo "recovery failed; putting back $aside" >&2
      stop_workload "$postgres"
      one_off --discard-current copy "$aside" >/dev/null
      start_workload "$postgres"
      recovered || echo "the database did not come back from $aside either: see './deploy.sh $stack restore --list' and the README's Backups" >&2
    fi
    for app in $apps; do start_workload "$app"; done
    in_backup await-base "$(in_backup resume --new-archive)" || true
    echo "the restore failed: the database is as it was before" >&2
    exit 1
  fi
  for app in $apps; do start_workload "$app"; done
  in_backup await-base "$(in_backup resume --new-archive)" || true
  echo "restored $describe in $((SECONDS - start)) s; what it replaced is kept: ./deploy.sh $stack restore $aside takes it back" >&2
}

case "$kind" in
  logical) restore_logical ;;
  *) restore_physical ;;
esac
