#!/bin/sh
# Entry point of the grafana container: the image's own /run.sh, after setting the admin password
# from the secret file. GF_SECURITY_ADMIN_PASSWORD__FILE only applies when Grafana creates its
# admin user on first start, so a rotated password is applied here on every start. On the very
# first start there is no admin user yet; Grafana then creates it from the same file.
grafana cli --homepath "${GF_PATHS_HOME:-/usr/share/grafana}" admin reset-admin-password --password-from-stdin \
  < "$GF_SECURITY_ADMIN_PASSWORD__FILE" > /dev/null 2>&1 \
  || echo "maricusco: admin password not reset (first start: Grafana creates the admin from the file)" >&2
exec /run.sh "$@"
