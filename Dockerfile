# Keyport as a container image: a static binary on distroless.
#
#   docker build -t keyport .
#   docker run -d --name keyport -p 8080:8080 -v keyport-data:/data \
#     -e KEYPORT_ISSUER=http://localhost:8080 keyport
#
# The image runs `keyport serve` as user 65532 (distroless "nonroot"),
# with its data (keyport.db, secret.key) in the /data volume. Other
# commands run in the same container, where they reach the server
# through its control socket in /data:
#   docker exec keyport keyport user create --username admin --email a@example.com --admin --invite
#   docker exec keyport keyport backup --to /data/backup.db

# Build stage: the Go version go.mod asks for.
FROM golang:1.26-bookworm AS build
WORKDIR /src
# Dependencies first, so a source change does not download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# CGO_ENABLED=0: a static binary that needs no libc (distroless/static has
# none). -trimpath: no build paths in the binary (reproducible builds).
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/keyport ./cmd/keyport \
 && mkdir -p /out/data

# Final stage: CA certificates (for LDAPS, upstream OIDC, SMTP, webhooks),
# tzdata and /etc/passwd with the nonroot user; no shell, no package
# manager.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/keyport /usr/local/bin/keyport
# The volume's mount point, owned by the user (there is no shell to chown
# it later); a named volume copies this ownership when it is created.
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
ENV KEYPORT_DATA_DIR=/data \
    KEYPORT_LISTEN=:8080
VOLUME ["/data"]
EXPOSE 8080
# No shell in the image, so no curl: keyport checks itself (GET /healthz
# on its listen address).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["/usr/local/bin/keyport", "health"]
# docker stop sends SIGTERM and waits 10s before SIGKILL; Keyport waits up
# to http.shutdown_timeout (20s) for requests in progress, so give it
# `docker stop -t 30` (compose: stop_grace_period: 30s).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/keyport"]
CMD ["serve"]
