#!/usr/bin/env bash
# Runs Keyport's whole test suite, installing what it needs when missing.
# CI calls this through .ci/run; developers run it as it is.
set -euo pipefail
cd "$(dirname "$0")/.."

# External servers the integration tests drive: OpenLDAP's slapd, Chromium
# (for the browser tests), nginx and Caddy (reverse proxies in front of
# Keyport), fail2ban (whose fail2ban-regex checks the shipped filter) and
# aiosmtpd (the SMTP server the mail tests send to), from Debian's packages.
missing=()
command -v slapd >/dev/null 2>&1 || [ -x /usr/sbin/slapd ] || missing+=(slapd)
command -v ldapadd >/dev/null 2>&1 || missing+=(ldap-utils)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
command -v caddy >/dev/null 2>&1 || missing+=(caddy)
command -v fail2ban-regex >/dev/null 2>&1 || missing+=(fail2ban)
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || missing+=(haproxy)
# PostgreSQL for storage/postgres (internal/pgtest runs its own throwaway
# cluster; policy-rc.d below keeps the package from starting the system one).
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
# Debian's python3 (not one earlier on PATH, such as pyenv's) sees the package.
/usr/bin/python3 -c 'import aiosmtpd' >/dev/null 2>&1 || python3 -c 'import aiosmtpd' >/dev/null 2>&1 || missing+=(python3-aiosmtpd)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  # The tests start their own servers on free ports: keep the packages from
  # starting system services (nginx and Caddy on port 80) while installing.
  policy=/usr/sbin/policy-rc.d
  made_policy=""
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null && $sudo chmod 755 "$policy" && made_policy=1
  fi
  if ! { $sudo apt-get update -qq && $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }; then
    echo "warning: could not install ${missing[*]}" >&2
  fi
  [ -z "$made_policy" ] || $sudo rm -f "$policy"
fi

unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:" >&2
  echo "$unformatted" >&2
  exit 1
fi
go vet ./...
# Integration helpers fail instead of skipping when their server is missing.
export KEYPORT_REQUIRE_INTEGRATION=1
go test -count=1 -race -timeout 30m ./...
