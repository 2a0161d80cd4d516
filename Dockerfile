# Build stage: the toolchain and the whole source tree.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin hostwatch

# Runtime stage: the binary alone on a slim Debian.
FROM debian:bookworm-slim
COPY --from=build /src/target/release/hostwatch /usr/local/bin/hostwatch
ENV HOSTWATCH_STORAGE__PATH=/var/lib/hostwatch/hostwatch.db
VOLUME /var/lib/hostwatch
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/hostwatch"]
CMD ["serve"]
