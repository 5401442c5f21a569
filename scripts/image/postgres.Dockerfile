# PostgreSQL from Debian's packages on the debootstrap base (scripts/image_test.sh): a stand-in for
# the public postgres image where no registry is reachable. Same interface: POSTGRES_USER,
# POSTGRES_PASSWORD, POSTGRES_DB make the database on first start; PGPORT picks the port.
ARG BASE_IMAGE=switchboard-base:bookworm
FROM ${BASE_IMAGE}
RUN mkdir -p /etc/postgresql-common \
    && echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.conf \
    && apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb \
    && ln -s "$(ls /usr/lib/postgresql | sort -V | tail -n 1)" /usr/lib/postgresql/current \
    && mkdir -p /var/lib/postgresql/data /var/run/postgresql \
    && chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql
COPY postgres-entrypoint.sh /usr/local/bin/postgres-entrypoint.sh
ENV PATH=/usr/lib/postgresql/current/bin:$PATH \
    PGDATA=/var/lib/postgresql/data
USER postgres
ENTRYPOINT ["/usr/local/bin/postgres-entrypoint.sh"]
CMD ["postgres"]
