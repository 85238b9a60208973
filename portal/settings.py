"""Settings for the PBS portal, read from the environment.

The defaults are production's: without DJANGO_DEBUG=1 the portal refuses to start
unless DJANGO_SECRET_KEY and PORTAL_ENCRYPTION_KEYS are set. Development mode
(DJANGO_DEBUG=1, asked for by `make run` and the tests) needs nothing else: SQLite
under var/, console mail, a local Redis, keys derived from a public development
secret. Every variable is documented in docs/configuration.md.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

from celery.schedules import crontab
from django.utils.csp import CSP

from portal.env import (
    ImproperlyConfiguredEnv,
    database_from_url,
    env_bool,
    env_int,
    env_list,
    env_str,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("PORTAL_VAR_DIR", str(BASE_DIR / "var")))

# Production unless development is asked for: `make run`, `make test` and the test settings
# set DJANGO_DEBUG=1 explicitly; a forgotten variable never serves debug pages.
DEBUG = env_bool("DJANGO_DEBUG", False)
_DEV_SECRET = "dev-only-insecure-secret-key-change-me-in-production-0123456789"  # noqa: S105 - refused when DEBUG=0
SECRET_KEY = env_str("DJANGO_SECRET_KEY", _DEV_SECRET if DEBUG else None)
if not DEBUG and SECRET_KEY == _DEV_SECRET:
    raise ImproperlyConfiguredEnv("DJANGO_SECRET_KEY must be set when DJANGO_DEBUG=0")

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "django_htmx",
    # The domain apps, lowest layer first (docs/architecture.md; checked by import-linter).
    "core",
    "audit",
    "accounts",
    "plans",
    "tenants",
    "offsite",
    "attribution",
    "billing",
    "alerts",
    "selfservice",
    "overview",  # the staff's first screen (/)
    "portal",  # project-wide commands (rotate_encryption_keys)
    "devstack",  # make run's demo seeding (demo_seed); talks to the simulator only when asked
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.middleware.SecondFactorPolicyMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"
ASGI_APPLICATION = "portal.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.csp",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.context_processors.roles",
                "core.context_processors.site",
            ],
        },
    },
]

DATABASES = {
    "default": database_from_url(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'portal.sqlite3'}"), BASE_DIR
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3") and DATABASES["default"]["NAME"] != ":memory:":
    # SQLite cannot create its directory; a fresh clone has no var/ yet.
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "accounts:login"
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("PORTAL_TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# --- Redis, cache, Celery -------------------------------------------------
REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6390/0")
CACHE_URL = env_str("CACHE_URL", REDIS_URL if env_bool("PORTAL_CACHE_REDIS", True) else "locmem")
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
        if CACHE_URL == "locmem"
        else {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}
    )
}

CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND", REDIS_URL)
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# Tasks are idempotent, so a task whose worker dies is delivered again.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600)}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_RESULT_EXPIRES = 3600
CELERY_TIMEZONE = TIME_ZONE
METERING_HOUR = env_int("PORTAL_METERING_HOUR", 2)
CELERY_BEAT_SCHEDULE = {
    "hosts-health-check": {
        "task": "tenants.tasks.hosts_health_check",
        "schedule": crontab(minute="*/5"),
    },
    "onboarding-runs-recover": {
        "task": "tenants.tasks.onboarding_runs_recover",
        "schedule": crontab(minute="*"),
    },
    "token-secrets-expire": {
        "task": "tenants.tasks.token_secrets_expire",
        "schedule": crontab(minute=45, hour=METERING_HOUR),
    },
    "hosts-drift-check": {
        "task": "tenants.tasks.hosts_drift_check",
        "schedule": crontab(minute=30, hour=METERING_HOUR + 1),
    },
    # Chunk-exact usage an hour before metering, so the day's figures are there when it samples.
    "attribution-daily": {
        "task": "attribution.tasks.attribution_collect_all",
        "schedule": crontab(minute=0, hour=(METERING_HOUR - 1) % 24),
    },
    "metering-daily": {
        "task": "billing.tasks.metering_collect_all",
        "schedule": crontab(minute=0, hour=METERING_HOUR),
    },
    "billing-monthly-close": {
        "task": "billing.tasks.billing_close_previous_month",
        "schedule": crontab(minute=0, hour=METERING_HOUR + 2, day_of_month=1),
    },
    "alerts-hourly": {
        "task": "alerts.tasks.alerts_hourly_check",
        "schedule": crontab(minute=15),
    },
    "offsite-status": {
        "task": "offsite.tasks.offsite_status_refresh_all",
        "schedule": crontab(minute="*/30"),
    },
    "login-throttles-prune": {
        "task": "accounts.tasks.login_throttles_prune",
        "schedule": crontab(minute=40),
    },
}

# --- Security -------------------------------------------------------------
SESSION_COOKIE_SECURE = env_bool("PORTAL_SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
# Idle timeout: every request pushes the expiry forward.
SESSION_COOKIE_AGE = env_int("PORTAL_SESSION_IDLE_SECONDS", 30 * 60)
SESSION_SAVE_EVERY_REQUEST = True
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_SSL_REDIRECT = env_bool("PORTAL_SSL_REDIRECT", not DEBUG)
SECURE_HSTS_SECONDS = env_int("PORTAL_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = env_bool("PORTAL_HSTS_PRELOAD", not DEBUG)
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("PORTAL_BEHIND_TLS_PROXY", False) else None
)
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF, CSP.NONCE],
    "img-src": [CSP.SELF, "data:"],
    "connect-src": [CSP.SELF],
    "font-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
    "form-action": [CSP.SELF],
}

# Fernet keys (urlsafe base64, 32 bytes) for secrets kept at rest; the first
# encrypts, all decrypt, so keys rotate by prepending a new one.
_dev_fernet = base64.urlsafe_b64encode(hashlib.sha256(SECRET_KEY.encode()).digest()).decode()
PORTAL_ENCRYPTION_KEYS = env_list(
    "PORTAL_ENCRYPTION_KEYS", [_dev_fernet] if DEBUG else []
)
if not PORTAL_ENCRYPTION_KEYS:
    raise ImproperlyConfiguredEnv("PORTAL_ENCRYPTION_KEYS must be set when DJANGO_DEBUG=0")

# --- Portal behaviour -----------------------------------------------------
PORTAL_NAMESPACE_PARENT = env_str("PORTAL_NAMESPACE_PARENT", "clients")
PORTAL_PBS_REALM = env_str("PORTAL_PBS_REALM", "pbs")
PORTAL_BASE_URL = env_str("PORTAL_BASE_URL", "http://127.0.0.1:8000")
# Production requires a second factor for staff unless switched off explicitly.
PORTAL_REQUIRE_STAFF_TOTP = env_bool("PORTAL_REQUIRE_STAFF_TOTP", not DEBUG)
PORTAL_MAX_RESTORE_TOKEN_DAYS = env_int("PORTAL_MAX_RESTORE_TOKEN_DAYS", 365)
# A token secret kept for its one reveal is destroyed if nobody reveals it within this time.
PORTAL_SECRET_REVEAL_DAYS = env_int("PORTAL_SECRET_REVEAL_DAYS", 14)
# The longest lifetime of an API key a user makes on their security page.
PORTAL_API_KEY_MAX_DAYS = env_int("PORTAL_API_KEY_MAX_DAYS", 365)
PORTAL_INVITE_TTL_HOURS = env_int("PORTAL_INVITE_TTL_HOURS", 72)
PORTAL_LOGIN_MAX_FAILURES = env_int("PORTAL_LOGIN_MAX_FAILURES", 5)
PORTAL_LOGIN_LOCKOUT_SECONDS = env_int("PORTAL_LOGIN_LOCKOUT_SECONDS", 15 * 60)
# Several people may share one address (office NAT), so the per-IP limit is higher.
PORTAL_LOGIN_MAX_FAILURES_PER_IP = env_int(
    "PORTAL_LOGIN_MAX_FAILURES_PER_IP", 4 * PORTAL_LOGIN_MAX_FAILURES
)
# Behind a reverse proxy: take the client IP from the right-most X-Forwarded-For entry.
PORTAL_TRUST_X_FORWARDED_FOR = env_bool("PORTAL_TRUST_X_FORWARDED_FOR", False)
PORTAL_PBS_TIMEOUT_SECONDS = float(env_str("PORTAL_PBS_TIMEOUT_SECONDS", "15"))
# Billing (docs/billing.md): metering fan-out and retries, document numbering.
PORTAL_METERING_CHUNK_SIZE = env_int("PORTAL_METERING_CHUNK_SIZE", 500)
PORTAL_METERING_ATTEMPTS = env_int("PORTAL_METERING_ATTEMPTS", 3)
PORTAL_METERING_RETRY_DELAY_SECONDS = float(env_str("PORTAL_METERING_RETRY_DELAY_SECONDS", "10"))
PORTAL_METERING_STALE_HOURS = env_int("PORTAL_METERING_STALE_HOURS", 6)
PORTAL_INVOICE_PREFIX = env_str("PORTAL_INVOICE_PREFIX", "INV-")
PORTAL_CREDIT_NOTE_PREFIX = env_str("PORTAL_CREDIT_NOTE_PREFIX", "CN-")
# The issuer printed on invoice and credit note PDFs; the address may span lines ("\n" or "|").
PORTAL_COMPANY_NAME = env_str("PORTAL_COMPANY_NAME", "Backup service provider")
PORTAL_COMPANY_ADDRESS = env_str("PORTAL_COMPANY_ADDRESS", "")
# Every page says "demo data" in a strip under the top bar (make run sets it; never in production).
PORTAL_DEMO_DATA = env_bool("PORTAL_DEMO_DATA", False)
# Onboarding runs (tenants/): retries of transient PBS errors, batch size, placement reserve.
PORTAL_ONBOARDING_MAX_RETRIES = env_int("PORTAL_ONBOARDING_MAX_RETRIES", 8)
PORTAL_ONBOARDING_RETRY_BASE_SECONDS = float(env_str("PORTAL_ONBOARDING_RETRY_BASE_SECONDS", "2"))
PORTAL_ONBOARDING_BATCH_SIZE = env_int("PORTAL_ONBOARDING_BATCH_SIZE", 50)
# Runs of different tenants executed side by side on one host (capped by its max_connections).
PORTAL_ONBOARDING_HOST_CONCURRENCY = env_int("PORTAL_ONBOARDING_HOST_CONCURRENCY", 4)
PORTAL_ONBOARDING_STALE_SECONDS = env_int("PORTAL_ONBOARDING_STALE_SECONDS", 120)
PORTAL_ONBOARDING_LEASE_SECONDS = env_int("PORTAL_ONBOARDING_LEASE_SECONDS", 300)
PORTAL_PLACEMENT_RESERVE_GIB = env_int("PORTAL_PLACEMENT_RESERVE_GIB", 50)
PORTAL_ALERT_EMAILS = env_list("PORTAL_ALERT_EMAILS", [])
PORTAL_WEBHOOK_URL = env_str("PORTAL_WEBHOOK_URL", "")
PORTAL_WEBHOOK_SECRET = env_str("PORTAL_WEBHOOK_SECRET", "")
PORTAL_WEBHOOK_MAX_ATTEMPTS = env_int("PORTAL_WEBHOOK_MAX_ATTEMPTS", 8)
PORTAL_WEBHOOK_TIMEOUT_SECONDS = env_int("PORTAL_WEBHOOK_TIMEOUT_SECONDS", 10)
# Webhooks go to public internet addresses only; a development stack or the tests may allow
# their loopback receiver explicitly.
PORTAL_WEBHOOK_ALLOW_PRIVATE_ADDRESSES = env_bool("PORTAL_WEBHOOK_ALLOW_PRIVATE_ADDRESSES", False)
PORTAL_ALERT_BACKUP_MAX_AGE_HOURS = env_int("PORTAL_ALERT_BACKUP_MAX_AGE_HOURS", 26)

# --- Mail -----------------------------------------------------------------
# Django 6.1 configures mail through MAILERS; the backend's own options go in OPTIONS.
EMAIL_BACKEND_PATH = env_str(
    "DJANGO_EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend" if DEBUG else "django.core.mail.backends.smtp.EmailBackend",
)
_mail_options: dict[str, object] = {}
if EMAIL_BACKEND_PATH.endswith("smtp.EmailBackend"):
    _mail_options = {
        "host": env_str("DJANGO_EMAIL_HOST", "localhost"),
        "port": env_int("DJANGO_EMAIL_PORT", 25),
        "username": env_str("DJANGO_EMAIL_HOST_USER", ""),
        "password": env_str("DJANGO_EMAIL_HOST_PASSWORD", ""),
        "use_tls": env_bool("DJANGO_EMAIL_USE_TLS", False),
        "timeout": 20,
    }
elif EMAIL_BACKEND_PATH.endswith("filebased.EmailBackend"):
    _mail_options = {"file_path": env_str("DJANGO_EMAIL_FILE_PATH", str(VAR_DIR / "mail"))}
MAILERS = {"default": {"BACKEND": EMAIL_BACKEND_PATH, "OPTIONS": _mail_options}}
DEFAULT_FROM_EMAIL = env_str("DJANGO_DEFAULT_FROM_EMAIL", "portal@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- REST API -------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "accounts.authentication.ApiKeyAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "core.pagination.BoundedLimitOffsetPagination",
    "PAGE_SIZE": 50,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "PBS Portal API",
    "DESCRIPTION": "Provisioning, lifecycle and billing for Proxmox Backup Server tenants.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema and its docs page are for signed-in users only (no map for strangers).
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
}

# --- Logging --------------------------------------------------------------
LOG_LEVEL = env_str("PORTAL_LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
    },
}
