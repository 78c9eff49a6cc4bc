#!/usr/bin/env bash
# Make sure a Docker engine answers on this machine.
# - installs Debian's docker.io when dockerd is missing;
# - starts dockerd when no engine answers, and never starts a second one;
# - waits until `docker info` answers.
source "$(dirname "$0")/lib.sh"

say "container engine"
if docker info >/dev/null 2>&1; then
  ok "docker engine answers"
  exit 0
fi

# The engine (the client may already come from elsewhere) and what it needs at run time.
apt_install docker.io iptables

engine_running() {
  local pid
  [ -s /var/run/docker.pid ] || return 1
  pid="$(cat /var/run/docker.pid)"
  kill -0 "$pid" 2>/dev/null && grep -q dockerd "/proc/$pid/cmdline" 2>/dev/null
}

if engine_running; then
  ok "dockerd already running (pid $(cat /var/run/docker.pid)); waiting for it"
elif [ -d /run/systemd/system ] && systemctl list-unit-files docker.service >/dev/null 2>&1; then
  systemctl start docker
  changed "started docker.service"
else
  # No systemd on this machine: run the daemon detached, logging to a file.
  setsid nohup dockerd >/var/log/dockerd.log 2>&1 </dev/null &
  changed "started dockerd (log: /var/log/dockerd.log)"
fi

for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then
    ok "docker engine answers"
    exit 0
  fi
  sleep 1
done
tail -n 20 /var/log/dockerd.log >&2 || true
die "docker engine did not answer within 60 s"
