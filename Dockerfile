# syntax=docker/dockerfile:1
# Multi-stage build: a static jurisdns binary in a distroless, non-root image.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X github.com/jurisdns/jurisdns/app.Version=${VERSION}" \
      -o /out/jurisdns ./cmd/jurisdns

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/jurisdns /jurisdns
# Every config key is settable through JURISDNS_* variables. Port 53 needs
# CAP_NET_BIND_SERVICE for the non-root user:
#   docker run --cap-add=NET_BIND_SERVICE -p 53:53/udp -p 53:53/tcp jurisdns
# or keep a high port: -e JURISDNS_LISTEN=0.0.0.0:1053 -p 53:1053/udp -p 53:1053/tcp
ENV JURISDNS_LISTEN="0.0.0.0:53"
EXPOSE 53/udp 53/tcp
USER 65532:65532
# The health check queries the DNS health name; no shell needed.
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s CMD ["/jurisdns", "health"]
ENTRYPOINT ["/jurisdns"]
CMD ["serve"]
