# A container of the stomphub binary, built in two stages: the build stage has
# Rust and Node (for the demo pages' npm packages, built into the binary); the
# image has the binary alone, run by an unprivileged user.
#
#   docker build -t stomphub .
#   docker run -p 8080:8080 -e STOMPHUB_API__TOKEN=change-me stomphub
#
# Configure with STOMPHUB_<SECTION>__<KEY> variables, or mount a file at
# /etc/stomphub/broker.toml. docs/operations.md, "In a container".

FROM rust:1-bookworm AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends nodejs npm \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin stomphub

FROM debian:bookworm-slim
# The root certificates an https `[proxy]` application is checked against.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/stomphub /usr/local/bin/stomphub
RUN mkdir -p /etc/stomphub && printf '[server]\nbind = "0.0.0.0:8080"\n' > /etc/stomphub/broker.toml
USER 65534:65534
EXPOSE 8080
ENV STOMPHUB_CONFIG=/etc/stomphub/broker.toml
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/stomphub"]
CMD ["serve"]
