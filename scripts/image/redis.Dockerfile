# Redis from Debian's packages on the debootstrap base (scripts/image_test.sh): a stand-in for the
# public redis image where no registry is reachable. Data in /data, as there.
ARG BASE_IMAGE=switchboard-base:bookworm
FROM ${BASE_IMAGE}
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb \
    && mkdir -p /data && chown redis:redis /data
WORKDIR /data
USER redis
CMD ["redis-server", "--bind", "127.0.0.1"]
