# shellcheck shell=bash
# Shared helpers for the set-up and test scripts. Source it; don't run it.

set -euo pipefail

WEBTIER_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export WEBTIER_ROOT
VENV="${WEBTIER_VENV:-$WEBTIER_ROOT/.venv}"
export VENV

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
ok() { printf '    ok: %s\n' "$*"; }
changed() { printf '    changed: %s\n' "$*"; }
die() { printf 'ERROR: %s\n' "$*" >&2; exit 1; }

# apt_install PKG... : install Debian packages that are missing (one apt-get update per run).
apt_install() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ "${#missing[@]}" -eq 0 ]; then
    ok "packages present: $*"
    return 0
  fi
  [ "$(id -u)" -eq 0 ] || die "need root to install: ${missing[*]}"
  if [ -z "${WEBTIER_APT_UPDATED:-}" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    WEBTIER_APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  changed "installed ${missing[*]}"
}
