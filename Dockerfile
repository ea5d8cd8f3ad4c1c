# One image with every dfs binary (namenode, datanode, dfs, dfs-fuse), used
# by docker-compose.yml for each role.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bins \
 && mkdir /out \
 && cp target/release/namenode target/release/datanode target/release/dfs \
       target/release/dfs-fuse /out/

FROM debian:bookworm-slim
# fuse3 for dfs-fuse (fusermount3); nothing else is needed at run time.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends fuse3 \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/ /usr/local/bin/
ENV DFS_NAMENODE=namenode:9000
