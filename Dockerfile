# One image for the API, the Ray head and the Ray workers: actors import the same package and Ray
# versions must match across the cluster.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    RAY_USAGE_STATS_ENABLED=0

WORKDIR /app
COPY pyproject.toml README.md ./
COPY outreach ./outreach
RUN pip install . && useradd --create-home --uid 1000 outreach

USER outreach
EXPOSE 8080
CMD ["outreach", "serve", "--host", "0.0.0.0", "--port", "8080"]
