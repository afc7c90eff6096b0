# One image, three binaries: tollgate-worker (the default entry point), tollgate-gateway and
# the tollgate CLI. docker-compose.yml runs the worker and the gateway from it.
FROM rust:1.95-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends protobuf-compiler && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin tollgate-worker --bin tollgate-gateway --bin tollgate \
 && cp target/release/tollgate-worker target/release/tollgate-gateway target/release/tollgate /usr/local/bin/

FROM debian:bookworm-slim
# ca-certificates: HTTPS to Temporal Cloud, S3, Slack, LLMs; git: module sources; curl: health checks.
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates git curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/tollgate --create-home tollgate
COPY --from=build /usr/local/bin/tollgate-worker /usr/local/bin/tollgate-gateway /usr/local/bin/tollgate /usr/local/bin/
USER tollgate
WORKDIR /var/lib/tollgate
ENTRYPOINT ["tollgate-worker"]
