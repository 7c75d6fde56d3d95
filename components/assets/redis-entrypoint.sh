#!/bin/sh
# Entry point of the redis container: the image's own entrypoint with the generated config. Where
# the target can, the config (it holds the password) is root's alone (0400); the image's
# entrypoint starts as root and drops to the redis user, who reads it, so that user gets a copy of
# its own in the container's tmpfs. Root has no CAP_DAC_OVERRIDE here: the copy is made in a
# directory of root's, then given away.
set -eu
conf=$1
shift
if [ "$(id -u)" = 0 ]; then
  private=$(mktemp -d "${TMPDIR:-/tmp}/maricusco-secrets.XXXXXX")
  install -m 0400 "$conf" "$private/redis.conf"
  chown redis:redis "$private/redis.conf" "$private"
  conf=$private/redis.conf
fi
exec docker-entrypoint.sh redis-server "$conf" "$@"
