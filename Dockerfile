# One image for every siteops process: site workers, the platform worker, beat, Flower,
# the exporter and the Odoo simulator differ only by command (docker-compose.yml).
FROM python:3.11-slim

# Logs reach `docker compose logs` at once; no .pyc files or pip cache in the layers.
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    SITEOPS_VAR_DIR=/var/lib/siteops \
    SITEOPS_SITES_FILE=/app/sites.toml

WORKDIR /app

# The dependencies first, read from pyproject.toml: this layer is rebuilt only when
# pyproject.toml changes, not on every source edit.
COPY pyproject.toml README.md ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# Then the project itself (a regular install, not editable: the image has no checkout).
COPY siteops ./siteops
RUN pip install --no-deps .

COPY sites.toml ./
COPY workers ./workers
COPY beat ./beat

# A fixed non-root uid; /var/lib/siteops (SQLite fallback, beat state, Prometheus
# multiprocess files) is created here so named volumes mounted there inherit the owner.
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/siteops --shell /usr/sbin/nologin siteops \
    && mkdir -p /var/lib/siteops/metrics \
    && chown -R siteops:siteops /var/lib/siteops \
    && chmod 0755 workers/start beat/start
USER siteops

# docker-compose.yml sets the command and SITEOPS_SITE of each service.
CMD ["/app/workers/start"]
