# llmmon as a sidecar image: a wheel built in one stage, installed into a slim Python in the
# next, so no compiler, pip cache or source tree reaches the final image.
#   docker build -t llmmon:0.3.0 .
#   docker run --read-only --tmpfs /tmp -p 9977:9977 llmmon:0.3.0 --demo

FROM python:3.11.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY llmmon ./llmmon
# Wheels for llmmon and every dependency; the runtime stage installs from these alone.
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11.11-slim-bookworm
LABEL org.opencontainers.image.title="llmmon" \
      org.opencontainers.image.description="Prometheus exporter for LLM endpoints and the GPUs under them" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    NVIDIA_DRIVER_CAPABILITIES=utility
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links=/wheels /wheels/llmmon-*.whl \
    && rm -rf /wheels \
    && mkdir -p /etc/llmmon
# The config is read from /etc/llmmon/config.yaml when mounted there (else the built-in
# defaults); API keys from files under /run/secrets named by api_key_file.
WORKDIR /
USER 10001:10001
EXPOSE 9977
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["llmmon", "healthcheck"]
# Exec form: llmmon runs as PID 1 and receives SIGTERM itself (it handles it: exit 0).
ENTRYPOINT ["llmmon", "run"]
CMD []
