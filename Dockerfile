# Production image: the portal's web, worker and beat processes share it.
FROM python:3.12-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 DJANGO_SETTINGS_MODULE=portal.settings
RUN useradd --system --home /app --shell /usr/sbin/nologin portal
WORKDIR /app

COPY pyproject.toml constraints.txt ./
COPY . .
RUN pip install --no-cache-dir -c constraints.txt . \
 && DJANGO_DEBUG=1 python manage.py collectstatic --noinput -v0 \
 && chown -R portal /app/var 2>/dev/null || true

USER portal
EXPOSE 8000
CMD ["gunicorn", "portal.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]
