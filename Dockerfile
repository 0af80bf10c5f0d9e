# One image for the edge, every worker and the CLI; compose.yaml picks the command.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY agora ./agora
COPY contracts ./contracts
COPY db ./db
COPY edge ./edge
COPY workers ./workers
RUN pip install . && useradd --system --uid 10001 agora
USER agora
ENV AGORA_HOST=0.0.0.0
EXPOSE 8080
CMD ["agora", "edge"]
