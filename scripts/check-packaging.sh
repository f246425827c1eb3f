#!/bin/sh
# Checks the files in packaging/ and the Dockerfile with the tools this
# machine has (no Docker daemon needed): haproxy -c, systemd-analyze, and a
# structural check of docker-compose.yml. A missing tool is skipped with a
# note, unless KEYPORT_REQUIRE_INTEGRATION=1.
set -eu
cd "$(dirname "$0")/.."
fail=0
missing() {
	echo "skip: $1 is not installed"
	if [ "${KEYPORT_REQUIRE_INTEGRATION:-}" = 1 ]; then fail=1; fi
}

if command -v haproxy >/dev/null; then
	# keyport1/keyport2 resolve only inside the compose network: haproxy
	# warns and starts them unresolved (init-addr none); errors still fail.
	haproxy -c -f packaging/haproxy.cfg
else
	missing haproxy
fi

if command -v systemd-analyze >/dev/null; then
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	go build -o "$tmp/keyport" ./cmd/keyport
	sed "s#/usr/local/bin/keyport#$tmp/keyport#" packaging/keyport.service >"$tmp/keyport.service"
	systemd-analyze verify "$tmp/keyport.service"
	systemd-analyze security --offline=true --threshold=20 "$tmp/keyport.service" | tail -n 1
else
	missing systemd-analyze
fi

if python3 -c 'import yaml' 2>/dev/null; then
	python3 - <<'PY'
import os, sys, yaml
os.chdir("packaging")
doc = yaml.safe_load(open("docker-compose.yml"))
svc = doc["services"]
problems = []
for name in ("postgres", "keyport1", "keyport2", "haproxy"):
    if name not in svc:
        problems.append(f"service {name} missing")
for name in ("keyport1", "keyport2"):
    s = svc.get(name, {})
    if s.get("command", [None])[0] != "serve":
        problems.append(f"{name}: command is not serve")
    if s.get("environment", {}).get("KEYPORT_ISSUER") != "http://localhost:8080":
        problems.append(f"{name}: issuer is not haproxy's URL")
    for sec in s.get("secrets", []):
        if sec["source"] not in doc["secrets"]:
            problems.append(f"{name}: secret {sec['source']} undefined")
    for c in s.get("configs", []):
        if not os.path.exists(doc["configs"][c["source"]]["file"]):
            problems.append(f"{name}: config file {c['source']} missing")
    if s.get("volumes") == svc.get("keyport1" if name == "keyport2" else "keyport2", {}).get("volumes"):
        problems.append(f"{name}: shares its /data volume with the other replica")
ctx = svc["keyport1"]["build"]["context"]
if not os.path.exists(os.path.join(ctx, svc["keyport1"]["build"]["dockerfile"])):
    problems.append("build: no Dockerfile")
if "./haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro" not in svc["haproxy"]["volumes"]:
    problems.append("haproxy: haproxy.cfg not mounted")
ip = svc["haproxy"]["networks"]["keyport"]["ipv4_address"]
if f'trusted_proxies = ["{ip}"]' not in open("keyport-compose.toml").read():
    problems.append(f"keyport-compose.toml does not trust haproxy's {ip}")
for p in problems:
    print("docker-compose.yml:", p, file=sys.stderr)
sys.exit(1 if problems else 0)
PY
	echo "docker-compose.yml: services, secrets, configs and volumes fit together"
else
	missing "python3 with PyYAML"
fi

# The Dockerfile's stages and the files its COPY lines need.
grep -q '^FROM golang:.* AS build$' Dockerfile
grep -q '^FROM gcr.io/distroless/static' Dockerfile
grep -q 'CGO_ENABLED=0 go build -trimpath' Dockerfile
grep -q '^USER 65532:65532$' Dockerfile
echo "Dockerfile: build and distroless stages, static binary, numeric user"
exit $fail
