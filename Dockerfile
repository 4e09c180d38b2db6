# The relledger image: the CLI, for `consume`, `project --follow`, `serve` and one-off commands.
#
# Dependencies are installed at the versions in constraints.txt, the same pins `.ci/run`
# tests with. The process runs as the unprivileged user `relledger`, which owns /data:
# a single container keeps its SQLite store there (RELLEDGER_DB below; mount a volume on
# /data to keep it), and the compose deployment points RELLEDGER_DB at PostgreSQL instead.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY pyproject.toml README.md LICENSE constraints.txt ./
COPY domain ./domain
COPY projections ./projections
COPY consumers ./consumers
COPY service ./service
COPY relledger ./relledger
COPY api ./api
RUN pip install -c constraints.txt . \
    && useradd --system --user-group --uid 10001 --home-dir /data --no-create-home \
       --shell /usr/sbin/nologin relledger \
    && mkdir -p /data \
    && chown relledger:relledger /data \
    && chmod 0700 /data

ENV RELLEDGER_DB=sqlite:////data/relledger.db
VOLUME ["/data"]
WORKDIR /data
USER relledger

# `docker run -v relledger-data:/data IMAGE migrate`, then `IMAGE ingest FILE`, `IMAGE serve ...`;
# with PostgreSQL: `-e RELLEDGER_DB=postgresql://...` (see docs/operations.md).
ENTRYPOINT ["relledger"]
CMD ["--help"]
