# One image for the four services; docker-compose.yml picks the module to run.
FROM python:3.11-slim
COPY --from=ghcr.io/astral-sh/uv:0.13 /uv /usr/local/bin/uv
WORKDIR /app
COPY pyproject.toml uv.lock ./
COPY shared shared
COPY services services
# Bytecode compiled into the image: a container starts from the image's files,
# so without it every start compiles each module the service imports.
RUN uv sync --frozen --all-packages --no-dev --compile-bytecode \
    && .venv/bin/python -m compileall -q shared services >/dev/null
ENV PATH="/app/.venv/bin:$PATH" MODELOG_HOST=0.0.0.0
CMD ["python", "-m", "registrar"]
