# Production image: the portal's web, worker and beat processes share it (docs/deployment.md).
FROM python:3.12-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 DJANGO_SETTINGS_MODULE=portal.settings
RUN useradd --system --home /app --shell /usr/sbin/nologin portal
WORKDIR /app

# Dependencies first (the project installs no packages of its own: the code runs from /app),
# so a code change does not reinstall them.
COPY pyproject.toml constraints.txt README.md ./
RUN pip install --no-cache-dir -c constraints.txt .

COPY . .
# collectstatic runs with the production storage (DJANGO_DEBUG=0), which writes the
# manifest that production pages need; with DEBUG on it would be missing and every page
# would fail. The key and secret below exist only for this build step; production gives
# its own through the environment, and settings refuse to start without them.
RUN DJANGO_DEBUG=0 \
    DJANGO_SECRET_KEY=image-build-only-collectstatic-not-used-at-runtime-0123456789 \
    PORTAL_ENCRYPTION_KEYS=YnVpbGQtb25seS1ub3QtdXNlZC1hdC1ydW50aW1lLTA= \
    PORTAL_CACHE_REDIS=0 \
    python manage.py collectstatic --noinput -v0 \
 && test -f var/static/staticfiles.json

USER portal
EXPOSE 8000
# No gunicorn access log: invitation links carry a one-time token in their path, and the
# reverse proxy in front keeps the access log (with that path masked, deploy/nginx/).
# --timeout 60: a few pages wait on a PBS host. No control socket: nothing uses it, and
# gunicorn cannot create it under the read-only /app.
CMD ["gunicorn", "portal.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--timeout", "60", \
     "--no-control-socket"]
