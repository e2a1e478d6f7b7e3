# The Reprise service image: the API (`reprise serve`) and the worker (`reprise worker`).
#
#   docker build -t reprise/service .                  a host that can pull python:3.11-slim
#
#   docker build -t reprise/service \                  no registry: the bases that
#       --build-arg BASE=reprise/python-numpy-build:bookworm \      scripts/build-images.sh makes
#       --build-arg RUNTIME_BASE=reprise/python-numpy:bookworm .
#
#   docker run -e REPRISE_SECRET_KEY=... -p 8000:8000 -v reprise-data:/var/lib/reprise \
#       reprise/service                                the API (migrates, then serves on :8000)
#   docker run ... reprise/service worker --server http://api:8000   a worker (docs/deployment.md)
#
# Stages: `build` downloads the wheels of requirements.lock (exact pins, sha256-checked, binary
# only: no package code runs and no compiler is needed) and installs them into a virtualenv;
# `runtime` copies that virtualenv and the source tree onto a base without compilers (and,
# locally, without pip) and runs as an unprivileged user. docs/deployment.md explains it all.

ARG BASE=python:3.11-slim-bookworm
# The runtime base must have the same Python at the same path as BASE (the virtualenv links to
# it); by default it is BASE itself.
ARG RUNTIME_BASE=${BASE}

FROM ${BASE} AS build
# pip settings for this stage only; nothing of them reaches the runtime image.
#   PIP_INDEX_URL, PIP_EXTRA_INDEX_URL   a mirror of PyPI
#   EXTRA_CA_CERTS                       PEM text of CAs to trust besides the base's bundle
#                                        (a TLS-inspecting proxy); the hashes still decide
ARG PIP_INDEX_URL=
ARG PIP_EXTRA_INDEX_URL=
ARG EXTRA_CA_CERTS=
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PYTHONDONTWRITEBYTECODE=1
COPY requirements.lock /tmp/requirements.lock
RUN set -eu; \
    [ -n "$PIP_INDEX_URL" ] || unset PIP_INDEX_URL; \
    [ -n "$PIP_EXTRA_INDEX_URL" ] || unset PIP_EXTRA_INDEX_URL; \
    if [ -n "$EXTRA_CA_CERTS" ]; then \
        cat /etc/ssl/certs/ca-certificates.crt > /tmp/ca.pem; \
        printf '%s\n' "$EXTRA_CA_CERTS" >> /tmp/ca.pem; \
        export PIP_CERT=/tmp/ca.pem; \
    fi; \
    python3 -m pip wheel --no-deps --only-binary=:all: --require-hashes \
        -r /tmp/requirements.lock -w /tmp/wheels; \
    python3 -m venv --without-pip /opt/reprise/venv; \
    python3 -m pip --python /opt/reprise/venv/bin/python install --no-index \
        --find-links /tmp/wheels --no-deps --only-binary=:all: --require-hashes \
        -r /tmp/requirements.lock; \
    python3 -m pip --python /opt/reprise/venv/bin/python check; \
    printf '#!/bin/sh\nexec /opt/reprise/venv/bin/python -m app.cli "$@"\n' \
        > /opt/reprise/venv/bin/reprise; \
    chmod 0755 /opt/reprise/venv/bin/reprise; \
    rm -rf /tmp/wheels /tmp/ca.pem
# The dependencies' own test suites are never run here (56 MB).
RUN find /opt/reprise/venv/lib -depth -type d -name tests -path '*/site-packages/*' \
        -exec rm -rf {} +

FROM ${RUNTIME_BASE} AS runtime
LABEL org.opencontainers.image.title="reprise" \
      org.opencontainers.image.description="Reprise API and runner worker" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/reprise/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MPLCONFIGDIR=/opt/reprise/matplotlib \
    REPRISE_ENVIRONMENT=production \
    REPRISE_LOG_JSON=true \
    REPRISE_DATA_DIR=/var/lib/reprise
RUN set -eu; \
    groupadd --system --gid 10001 reprise; \
    useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/reprise --no-create-home \
        --shell /usr/sbin/nologin reprise; \
    install -d -o 10001 -g 10001 -m 0750 /var/lib/reprise
COPY --from=build /opt/reprise/venv /opt/reprise/venv
# The app finds alembic.ini, migrations/ and benchmarks/ next to app/ (REPO_ROOT), so the
# source tree stays one tree, owned by root and read-only for the service user.
COPY alembic.ini pyproject.toml /srv/reprise/
COPY migrations /srv/reprise/migrations
COPY benchmarks /srv/reprise/benchmarks
COPY runners /srv/reprise/runners
COPY app /srv/reprise/app
# What an editable install would write: a .pth that puts the tree on sys.path, and the
# distribution's metadata (the worker reports its version from it). Then compile the tree
# (the user cannot write __pycache__), prove the app imports, and build matplotlib's font
# cache once, in a folder the user owns (matplotlib ignores a cache it cannot write to).
RUN set -eu; \
    site="$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"; \
    echo /srv/reprise > "$site/reprise.pth"; \
    version="$(cd /srv/reprise && python -c 'import app; print(app.__version__)')"; \
    mkdir -p "$site/reprise-$version.dist-info"; \
    printf 'Metadata-Version: 2.1\nName: reprise\nVersion: %s\n' "$version" \
        > "$site/reprise-$version.dist-info/METADATA"; \
    python -m compileall -q /srv/reprise/app /srv/reprise/runners /srv/reprise/migrations; \
    cd / && python -c 'import app.main, runners.cli, matplotlib.font_manager'; \
    chown -R 10001:10001 "$MPLCONFIGDIR"; \
    reprise --help > /dev/null
USER 10001:10001
WORKDIR /var/lib/reprise
VOLUME ["/var/lib/reprise"]
EXPOSE 8000
# The API: GET /healthz. A worker (no HTTP endpoint): its health file, when the container sets
# REPRISE_WORKER_HEALTH_FILE (compose and Kubernetes do). See app/ops/healthcheck.py.
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-m", "app.ops.healthcheck"]
ENTRYPOINT ["reprise"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
