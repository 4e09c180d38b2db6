# The relledger image: the CLI, for `consume`, `project --follow`, `serve` and one-off commands.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY domain ./domain
COPY projections ./projections
COPY consumers ./consumers
COPY service ./service
COPY relledger ./relledger
COPY api ./api
RUN pip install . && useradd --system --no-create-home relledger
USER relledger

# `docker run IMAGE consume --bootstrap-servers ... --topic ...`, `IMAGE project --follow`, ...
ENTRYPOINT ["relledger"]
CMD ["--help"]
