# syntax=docker/dockerfile:1
# Multi-stage build: a static jurisdns binary in a distroless, non-root image
# that writes nothing outside the directories it is given, so it runs with a
# read-only root filesystem. docs/container.md has the docker run lines.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X github.com/jurisdns/jurisdns/app.Version=${VERSION}" \
      -o /out/jurisdns ./cmd/jurisdns \
 && mkdir -p /out/empty

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/jurisdns /jurisdns
# The only places jurisdns writes, and only when configured to: the last good
# copies of downloaded lists (lists.cache_dir) and the enforcement log
# (audit.path). Owned by the runtime user, so a named volume mounted there
# starts out writable; with --read-only, mount a volume or a tmpfs on them.
COPY --from=build --chown=65532:65532 /out/empty/ /var/lib/jurisdns/
COPY --from=build --chown=65532:65532 /out/empty/ /var/log/jurisdns/
# Every config key is settable through JURISDNS_* variables
# (docs/configuration.md); this one wins over listen in a config file.
# Port 53 as the non-root user: Docker (20.10 and later) lets any user bind
# low ports inside a container's own network namespace, so
#   docker run -p 53:53/udp -p 53:53/tcp jurisdns
# works as it is. Where that does not hold (--network host, Kubernetes,
# rootless engines) use a high port: -e JURISDNS_LISTEN=0.0.0.0:1053
# -p 53:1053/udp -p 53:1053/tcp. (--cap-add=NET_BIND_SERVICE alone does not
# help a non-root user: the capability is not in its effective set.)
ENV JURISDNS_LISTEN="0.0.0.0:53"
EXPOSE 53/udp 53/tcp
USER 65532:65532
# The health check queries the DNS health name on the first listen address;
# no shell needed. Configure through JURISDNS_* and JURISDNS_CONFIG rather
# than flags, so that `jurisdns health` sees the same configuration.
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s CMD ["/jurisdns", "health"]
ENTRYPOINT ["/jurisdns"]
CMD ["serve"]
