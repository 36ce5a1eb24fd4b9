"""Settings for the shop, read from the environment through one helper.

Every value has a default that runs the demo on one machine: SQLite under
``var/`` and a Redis server that the project starts itself (see
``shop/embedded_redis.py``). Set ``DATABASE_URL`` and ``REDIS_URL`` to use real
services; docker-compose.yml shows the production shape.
"""

import secrets
from pathlib import Path

import environ

from shop.queues import CELERY_QUEUES, CELERY_ROUTES

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(environ.Env().str("SHOP_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(exist_ok=True)

env = environ.Env()


def _local_secret(name: str) -> str:
    """Return a random secret kept in var/, created on first use (demo only)."""
    path = VAR_DIR / name
    if not path.exists():
        path.write_text(secrets.token_urlsafe(32))
    return path.read_text().strip()


DEBUG = env.bool("DJANGO_DEBUG", default=True)
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="") or _local_secret("secret-key")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_results",
    "shop",
    "orders",
    "notifications",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "shop.urls"
ASGI_APPLICATION = "shop.asgi.application"
WSGI_APPLICATION = "shop.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "shop.context_processors.cart",
                "shop.context_processors.demo_links",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------

DATABASES = {
    "default": env.db_url(
        "DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'shop.sqlite3'}"
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several worker processes write at once: WAL lets readers run beside the
    # writer, IMMEDIATE takes the write lock when a transaction starts (so a
    # read-then-write transaction never fails half way on an upgrade), and the
    # busy timeout makes a writer wait for the lock instead of failing.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
else:
    # 0: under ASGI each request runs in its own thread with its own
    # connection, and a persistent one is never handed back; with 60 the
    # checkout benchmark ran PostgreSQL out of connections. Use a pooler
    # (pgbouncer, or Django's psycopg pool) to reuse connections instead.
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=0)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth, i18n, static ---------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "shop:catalog"
LOGOUT_REDIRECT_URL = "shop:catalog"

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "Europe/London"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
MEDIA_ROOT = VAR_DIR / "media"

# --- Email ----------------------------------------------------------------

# The demo sends through SMTP to the catcher that `manage.py mailcatcher`
# runs; production points EMAIL_HOST and EMAIL_PORT at a real relay.
MAILERS = {
    "default": {
        "BACKEND": env.str(
            "EMAIL_BACKEND", default="django.core.mail.backends.smtp.EmailBackend"
        ),
        "OPTIONS": {
            "host": env.str("EMAIL_HOST", default="127.0.0.1"),
            "port": env.int("EMAIL_PORT", default=1025),
            "timeout": env.int("EMAIL_TIMEOUT_SECONDS", default=10),
        },
    }
}
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="shop@example.com")

# Where the demo's SMTP catcher keeps what it receives, and whether the
# /mail/ page that reads it is served. Never enable the page in production:
# it shows every message the shop sent.
NOTIFICATIONS_MAILBOX_DIR = Path(
    env.str("NOTIFICATIONS_MAILBOX_DIR", default=str(VAR_DIR / "mailbox"))
)
NOTIFICATIONS_MAILBOX_PAGE = env.bool("NOTIFICATIONS_MAILBOX_PAGE", default=DEBUG)

# --- Redis and Celery -----------------------------------------------------

# Without REDIS_URL the project runs its own Redis on a private port under
# var/ (shop/embedded_redis.py); `make demo` and the tests start it.
SHOP_EMBEDDED_REDIS_PORT = env.int("SHOP_EMBEDDED_REDIS_PORT", default=16379)
SHOP_EMBEDDED_REDIS = not env.str("REDIS_URL", default="")
REDIS_URL = env.str(
    "REDIS_URL", default=f"redis://127.0.0.1:{SHOP_EMBEDDED_REDIS_PORT}/0"
)


def _redis_db(url: str, db: int) -> str:
    """Return the URL of another database on the same Redis server."""
    base, _, last = url.rpartition("/")
    return f"{base}/{db}" if last.isdigit() else f"{url.rstrip('/')}/{db}"


# Database 0 is the broker's alone (it runs with noeviction); the simulated
# payment gateway keeps its state in database 2.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
# Task results are kept only where a caller reads them (chords, later);
# django-celery-results stores them in the database beside the rows they
# describe.
CELERY_RESULT_BACKEND = "django-db"
CELERY_RESULT_EXTENDED = False
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_EXPIRES = 7 * 24 * 3600

# Messages carry ids and JSON values only: pickle from a reachable broker
# would run whatever code it carries.
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_ACCEPT_CONTENT = ["json"]
CELERY_ENABLE_UTC = True
CELERY_TIMEZONE = TIME_ZONE

# One table of queues and one of routes (shop/queues.py). A route to a queue
# that is not declared raises instead of creating a queue nobody reads.
CELERY_TASK_QUEUES = CELERY_QUEUES
CELERY_TASK_ROUTES = CELERY_ROUTES
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_CREATE_MISSING_QUEUES = False

# Acknowledge after the work is done, so a worker that dies mid-task leaves
# the message to be delivered again; each process holds one message at a
# time, so a slow task never strands others behind it.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Time limits are set on the base task (shop/base_task.py) and per task.
# Redis hands an unacknowledged message to another worker after this long;
# it must exceed every time limit and countdown, or work runs twice. The
# worker refuses to start otherwise (shop/celery.py).
SHOP_VISIBILITY_TIMEOUT_SECONDS = env.int(
    "SHOP_VISIBILITY_TIMEOUT_SECONDS", default=3600
)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": SHOP_VISIBILITY_TIMEOUT_SECONDS,
    # Serve the queues a worker consumes in the order given to -Q, so one
    # worker on critical,default,low always takes critical work first.
    "queue_order_strategy": "priority",
    "socket_timeout": 5,
    "socket_connect_timeout": 5,
    "health_check_interval": 10,
    "retry_on_timeout": True,
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
# A web request must not hang on a dead broker: a few quick tries, then the
# error reaches the caller.
CELERY_TASK_PUBLISH_RETRY = True
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 3,
    "interval_start": 0,
    "interval_step": 0.1,
    "interval_max": 0.2,
}
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
# On a cold shutdown (SIGQUIT, or SIGTERM with REMAP_SIGTERM=SIGQUIT as in
# docker-compose.yml) running tasks get this long to finish before they are
# cancelled and their messages requeued. Equal to the soft time limit, so a
# task that keeps to its limit always finishes; the container's
# stop_grace_period must be longer.
CELERY_WORKER_SOFT_SHUTDOWN_TIMEOUT = 60.0
# Flower shows a task as sent, started and finished only with both on.
CELERY_WORKER_SEND_TASK_EVENTS = True
CELERY_TASK_SEND_SENT_EVENT = True
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# Exactly one beat process sends these (the Procfile and compose run one).
# `expires` drops a run that no worker picked up before the next one is due,
# so runs do not pile up while workers are down.
CELERY_BEAT_SCHEDULE = {
    "reindex-stale-products": {
        "task": "shop.tasks.reindex_stale_products_task",
        "schedule": 30.0,
        "options": {"expires": 25},
    },
    "check-dead-letter-depth": {
        "task": "shop.tasks.check_dead_letter_depth_task",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    # Sends a charge for every due subscription period (orders/billing.py).
    "bill-due-subscriptions": {
        "task": "orders.tasks.bill_due_subscriptions_task",
        "schedule": 300.0,
        "options": {"expires": 290},
    },
    # Publishes the event messages a broker outage held in the outbox
    # (shop/outbox.py); beat's own message gets through once the broker is.
    "relay-outbox": {
        "task": "shop.tasks.relay_outbox_task",
        "schedule": 5.0,
        "options": {"expires": 4},
    },
}

# --- The shop's own settings ----------------------------------------------

# "queue": side effects of an order go to the workers after commit.
# "inline": the same functions run in the request after commit. Only the
# checkout benchmark should use "inline"; it measures what the queues save.
ORDERS_SIDE_EFFECTS = env.str("ORDERS_SIDE_EFFECTS", default="queue")
# A line above this is refused as a typing error rather than a real order.
ORDERS_MAX_LINE_QUANTITY = env.int("ORDERS_MAX_LINE_QUANTITY", default=10_000)
ORDERS_MAX_LINES = env.int("ORDERS_MAX_LINES", default=200)
ORDERS_PAYMENT_GATEWAY = env.str(
    "ORDERS_PAYMENT_GATEWAY", default="orders.payments.SimulatedGateway"
)
ORDERS_GATEWAY_REDIS_URL = env.str(
    "ORDERS_GATEWAY_REDIS_URL", default=_redis_db(REDIS_URL, 2)
)
# Added to every simulated authorization and charge, to stand for a
# provider's network round trip. 0 unless a benchmark or a test asks for it.
ORDERS_GATEWAY_LATENCY_MS = env.int("ORDERS_GATEWAY_LATENCY_MS", default=0)
# A subscription period whose charge was declined is tried again by the
# billing run once this long has passed since the decline.
ORDERS_BILLING_DECLINE_RETRY_HOURS = env.int(
    "ORDERS_BILLING_DECLINE_RETRY_HOURS", default=24
)
# The UCI Online Retail file (.csv or .csv.gz); the demo and the real-data
# tests use it when set.
ONLINE_RETAIL_CSV = env.str("ONLINE_RETAIL_CSV", default="")
SHOP_SEARCH_RESULTS = 48
# Linked from the page footer while DEBUG is on; the Procfile serves it here.
SHOP_FLOWER_URL = env.str("SHOP_FLOWER_URL", default="http://127.0.0.1:5555/")
SHOP_LOW_STOCK_THRESHOLD = env.int("SHOP_LOW_STOCK_THRESHOLD", default=5)
# A message handed to workers more often than this without finishing (it
# kills its worker every time) is dead-lettered instead of looping forever.
SHOP_TASK_MAX_DELIVERIES = env.int("SHOP_TASK_MAX_DELIVERIES", default=5)
# Delivery counters live beside the broker, in database 3.
SHOP_TASK_STATE_REDIS_URL = env.str(
    "SHOP_TASK_STATE_REDIS_URL", default=_redis_db(REDIS_URL, 3)
)
# On-call is mailed when more dead letters than this wait for a replay.
SHOP_DEAD_LETTER_ALERT_DEPTH = env.int("SHOP_DEAD_LETTER_ALERT_DEPTH", default=10)
# The outbox sweep leaves younger unsent rows to the request that wrote them,
# whose own relay is publishing them (shop/outbox.py).
SHOP_OUTBOX_SWEEP_MIN_AGE_SECONDS = env.int(
    "SHOP_OUTBOX_SWEEP_MIN_AGE_SECONDS", default=5
)
# Sent outbox rows are kept this long, to look up when and under which task
# id an event went out, then deleted by the sweep.
SHOP_OUTBOX_RETENTION_HOURS = env.int("SHOP_OUTBOX_RETENTION_HOURS", default=24)
# The longest countdown any task of the shop is sent with; the worker checks
# it against the visibility timeout.
SHOP_MAX_COUNTDOWN_SECONDS = env.int("SHOP_MAX_COUNTDOWN_SECONDS", default=15 * 60)
# The welcome email goes out this long after sign-up (a countdown, so it
# must stay below SHOP_MAX_COUNTDOWN_SECONDS).
NOTIFICATIONS_WELCOME_DELAY_SECONDS = env.int(
    "NOTIFICATIONS_WELCOME_DELAY_SECONDS", default=5 * 60
)
ADMINS = env.list("DJANGO_ADMINS", default=[])
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Django REST framework ------------------------------------------------

REST_FRAMEWORK = {
    # Token first: an anonymous call is then answered 401 with a
    # WWW-Authenticate header, not 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    # Every error body is {"error": code, "detail": sentence}.
    "EXCEPTION_HANDLER": "shop.api.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Shop API",
    "DESCRIPTION": "Checkout and orders of the demo shop.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI from the installed sidecar package, not a CDN: the demo
    # runs offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Logging --------------------------------------------------------------

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
    },
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        name: {"level": env.str("SHOP_LOG_LEVEL", default="INFO")}
        for name in ("shop", "orders", "notifications", "exports")
    },
}
