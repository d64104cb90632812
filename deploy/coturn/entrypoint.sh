#!/bin/sh
# Starts coturn with deploy/coturn/turnserver.conf plus the settings from the environment.
# The secrets go into a private file, not onto the command line (visible in `ps`).
set -eu
: "${TURN_SECRET:?TURN_SECRET is required}"
base="${COTURN_BASE_CONF:-/etc/coturn/turnserver.conf}"
conf="$(mktemp "${TMPDIR:-/tmp}/turnserver.XXXXXX")"
chmod 600 "$conf"
{
  cat "$base"
  echo "listening-port=${TURN_PORT:-3478}"
  echo "realm=${TURN_REALM:-sync-suite}"
  echo "min-port=${TURN_MIN_PORT:-49152}"
  echo "max-port=${TURN_MAX_PORT:-65535}"
  echo "user-quota=${TURN_USER_QUOTA:-10}"
  echo "total-quota=${TURN_TOTAL_QUOTA:-1000}"
  if [ -n "${TURN_LISTEN_IP:-}" ] && [ "$TURN_LISTEN_IP" != "0.0.0.0" ]; then echo "listening-ip=$TURN_LISTEN_IP"; fi
  if [ -n "${TURN_RELAY_IP:-}" ]; then echo "relay-ip=$TURN_RELAY_IP"; fi
  if [ -n "${TURN_EXTERNAL_IP:-}" ]; then echo "external-ip=$TURN_EXTERNAL_IP/${TURN_RELAY_IP:-$TURN_EXTERNAL_IP}"; fi
  if [ "${TURN_ALLOW_LOOPBACK_PEERS:-false}" = "true" ]; then echo "allow-loopback-peers"; fi
  # coturn accepts several secrets: credentials signed with the previous one stay valid.
  echo "static-auth-secret=$TURN_SECRET"
  if [ -n "${TURN_SECRET_PREVIOUS:-}" ]; then echo "static-auth-secret=$TURN_SECRET_PREVIOUS"; fi
} > "$conf"
# Extra arguments go to turnserver (e.g. --pidfile, --db for a second instance on one host).
exec turnserver -c "$conf" "$@"
