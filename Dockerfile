# emojibot: `emojibot serve` on a slim Python 3.11, as a non-root user.
# Build: docker build -t emojibot .
# Run:   docker run -p 8080:8080 -v emojibot-data:/data -e EMOJIBOT_PLAYGROUND_SECRET=… emojibot
# (it listens on 0.0.0.0, so the playground needs its password; with platform tokens it is
# off unless EMOJIBOT_PLAYGROUND=on).
# PYTHON_IMAGE: any Debian-based Python 3.11 image with pip (a mirror of python:3.11-slim
# where Docker Hub is out of reach).
ARG PYTHON_IMAGE=python:3.11-slim
FROM ${PYTHON_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    EMOJIBOT_HOST=0.0.0.0 EMOJIBOT_PORT=8080 \
    EMOJIBOT_SHUTDOWN_GRACE_S=8 \
    EMOJIBOT_DATABASE_URL=sqlite+aiosqlite:////data/emojibot.sqlite

RUN useradd --create-home --uid 10001 emojibot && mkdir /data && chown emojibot /data
WORKDIR /app
COPY --chown=emojibot . /app
# Exactly the README's install (the browser-test tools stay out of the image).
RUN python3 -m pip install -e . && python3 -c "import bot.cli"

USER emojibot
VOLUME /data
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD python3 -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4).status != 200)"
# `docker stop` sends SIGTERM and kills after 10 s: the bot drains within 8 (events still
# running then are handed back to the database and replayed at the next start).
STOPSIGNAL SIGTERM
CMD ["emojibot", "serve"]
