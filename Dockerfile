# One image for the edge, every worker and the CLI; compose.yaml picks the command.
# Installs exactly the locked set (uv.lock, main dependencies only) with uv, itself
# pinned with hashes, as scripts/up does on a machine without Docker.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    UV_PYTHON_DOWNLOADS=never UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_NO_CACHE=1 \
    UV_PROJECT_ENVIRONMENT=/opt/agora
WORKDIR /app
COPY scripts/lib/uv-requirements.txt /tmp/uv-requirements.txt
RUN pip install --require-hashes -r /tmp/uv-requirements.txt
# Dependencies first (a layer that survives code changes), then the project itself.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --locked --no-install-project --no-editable
COPY kernel ./kernel
COPY contracts ./contracts
COPY db ./db
COPY edge ./edge
COPY workers ./workers
COPY ops ./ops
COPY sandboxes ./sandboxes
RUN uv sync --locked --no-editable && useradd --system --uid 10001 agora
ENV PATH=/opt/agora/bin:$PATH
USER agora
ENV AGORA_HOST=0.0.0.0
EXPOSE 8080
CMD ["agora", "edge"]
