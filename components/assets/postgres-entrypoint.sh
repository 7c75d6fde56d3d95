#!/bin/sh
# Entry point of the postgres container: the image's own entrypoint, plus one step at every
# start. POSTGRES_PASSWORD_FILE only applies when the data directory is first created, so a
# password rotated in the stack's config would never reach an existing database; here the role's
# password is set from the secret file once the server accepts connections on its local socket.
# The worker is started detached (docker-init, PID 1, reaps it) so that exec keeps the image's
# entrypoint, and then postgres, in charge of the container's signals.
(
  (
    tries=0
    while [ "$tries" -lt 300 ]; do
      if pg_isready -q -U "$POSTGRES_USER" -d "$POSTGRES_DB" && sh /run/maricusco/postgres-set-password.sh; then
        echo "maricusco: password of role $POSTGRES_USER set from $POSTGRES_PASSWORD_FILE" >&2
        exit 0
      fi
      tries=$((tries + 1))
      sleep 1
    done
    echo "maricusco: could not set the password of role $POSTGRES_USER" >&2
  ) &
)
exec docker-entrypoint.sh "$@"
