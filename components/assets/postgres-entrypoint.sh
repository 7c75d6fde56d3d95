#!/bin/sh
# Entry point of the postgres container: the image's own entrypoint, plus one step at every start.
# Once the real server accepts connections over TCP (the socket-only server of a first
# initialisation does not), postgres-roles.sh makes the roles what the stack says (the
# superuser, the app's role, the backup role, each password from its secret file), and only then
# does the readiness marker let the healthcheck pass, so no client connects before its role exists.
# The worker is started detached (docker-init, PID 1, reaps it) so that exec keeps the image's
# entrypoint, and then postgres, in charge of the container's signals.
ready=/var/run/postgresql/maricusco-roles-ready
# Where the target can, each secret file is root's alone (0400). The image's entrypoint reads the
# superuser's password again once it has dropped to the postgres user, so that user gets a copy
# of its own in the container's tmpfs; the roles script below runs as root.
if [ "$(id -u)" = 0 ] && [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then
  private=/var/run/postgresql/maricusco-secrets
  install -d -o postgres -g postgres -m 0700 "$private"
  install -o postgres -g postgres -m 0400 "$POSTGRES_PASSWORD_FILE" "$private/superuser_password"
  export POSTGRES_PASSWORD_FILE="$private/superuser_password"
fi
rm -f "$ready"
(
  (
    tries=0
    while [ "$tries" -lt 600 ]; do
      if pg_isready -q -h 127.0.0.1 -p 5432 && sh /run/maricusco/postgres-roles.sh; then
        touch "$ready"
        exit 0
      fi
      tries=$((tries + 1))
      sleep 1
    done
    echo "maricusco: the roles could not be set up; the container stays unhealthy (see the messages above)" >&2
  ) &
)
exec docker-entrypoint.sh "$@"
