"""Django settings for Switchboard, read from the environment (see .env.example for every variable).

With nothing set, Switchboard runs on one machine: SQLite, a filesystem Celery broker, the embedded
model and on-disk indexes, all under SWITCHBOARD_DATA_DIR. Setting DATABASE_URL, CELERY_BROKER_URL,
REDIS_URL and LLM_BASE_URL moves it onto PostgreSQL, Redis and a vLLM server with no code change.
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

import django_stubs_ext

from inference_app.env import ConfigError, Env, read_dotenv
from inference_app.logging import logging_config
from tickets.pipeline import stages as pipeline_stages

# Lets admin and queryset classes be subscripted at run time, as their type hints do.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent

# A .env file in the project root fills in what the real environment leaves unset.
env = Env({**read_dotenv(BASE_DIR / ".env"), **os.environ})

DATA_DIR = env.path("SWITCHBOARD_DATA_DIR", BASE_DIR / "var")

DEBUG = env.boolean("DEBUG", False)
ALLOWED_HOSTS = env.csv_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.csv_list("CSRF_TRUSTED_ORIGINS", [])
TIME_ZONE = env.text("TIME_ZONE", "UTC")

# --- storage -------------------------------------------------------------------------------------
DATABASES = {
    "default": env.database("DATABASE_URL", f"sqlite:///{DATA_DIR / 'switchboard.sqlite3'}").as_django(),
}
REDIS_URL = env.optional_url("REDIS_URL", schemes=("redis", "rediss"))

# --- Celery: the ticket pipeline -----------------------------------------------------------------
CELERY_BROKER_URL = env.url(
    "CELERY_BROKER_URL",
    REDIS_URL or "filesystem://",
    schemes=("redis", "rediss", "amqp", "filesystem", "memory"),
)
BROKER_DIR = DATA_DIR / "broker"
if CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
        # kombu polls each queue's folder; its default (1 s) costs up to a second per stage hop. A
        # folder listing per queue every 0.1 s costs well under 1% of a core at idle (measured with
        # benchmarks/bench_pipeline.py --embedded), and a ticket crosses its three hops in ~0.3 s.
        "polling_interval": env.number("CELERY_FILESYSTEM_POLL_SECONDS", 0.1, minimum=0.01, maximum=10),
    }
else:
    # Well above the longest task, so a slow model call is never handed to a second worker.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
if CELERY_BROKER_URL.startswith("redis://"):
    # kombu's Redis transport, keeping one client per channel (inference_app/redis_broker.py).
    CELERY_BROKER_TRANSPORT = "inference_app.redis_broker:Transport"
# Task results are not kept (tickets carry their own state); tasks that answer, like the health
# ping, opt in and land here.
CELERY_RESULT_BACKEND = env.text("CELERY_RESULT_BACKEND", REDIS_URL or f"file://{DATA_DIR / 'results'}")
CELERY_RESULT_EXPIRES = 3600
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "switchboard"
CELERY_TASK_SOFT_TIME_LIMIT = env.integer("CELERY_TASK_SOFT_TIME_LIMIT", 300, minimum=1)
CELERY_TASK_TIME_LIMIT = env.integer("CELERY_TASK_TIME_LIMIT", 360, minimum=1)
CELERY_TASK_ALWAYS_EAGER = env.boolean("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Workers keep the LOGGING below (JSON lines with request and ticket ids) instead of Celery's format.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Task modules outside an app's tasks.py (webhook deliveries, the API's search and import jobs).
CELERY_IMPORTS = ("tickets.services.webhooks", "tickets.api.tasks")

# --- the model layer -----------------------------------------------------------------------------
LLM_BACKEND = env.choice("LLM_BACKEND", "llamacpp", ("llamacpp", "openai"))
LLM_BASE_URL = env.optional_url("LLM_BASE_URL", schemes=("http", "https"))
if LLM_BACKEND == "openai" and LLM_BASE_URL is None and not env.is_set("LLM_BASE_URL"):
    env.required_text(
        "LLM_BASE_URL", "LLM_BACKEND=openai needs the server's address, e.g. http://vllm:8000/v1"
    )
LLM_MODEL = env.text("LLM_MODEL", "smollm2-135m-instruct")
LLM_API_KEY = env.optional_text("LLM_API_KEY")
LLM_TIMEOUT_SECONDS = env.number("LLM_TIMEOUT_SECONDS", 30.0, minimum=0.1)
LLM_MAX_RETRIES = env.integer("LLM_MAX_RETRIES", 2, minimum=0, maximum=10)
LLM_PRICE_PROMPT_PER_MTOK = env.number("LLM_PRICE_PROMPT_PER_MTOK", 0.0, minimum=0)
LLM_PRICE_COMPLETION_PER_MTOK = env.number("LLM_PRICE_COMPLETION_PER_MTOK", 0.0, minimum=0)
LLM_WATTS = env.number("LLM_WATTS", 30.0, minimum=0)

LLM_SAMPLES = env.integer("LLM_SAMPLES", 1, minimum=1, maximum=15)
# How much the model's choice weighs against retrieval (a likelihood ratio; `evaluate` learns it from
# history). 1 gives it no say, so it is not even asked. The embedded 135M model starts with none; a
# vLLM-served instruction model with some.
LLM_DECISION_WEIGHT = env.number(
    "LLM_DECISION_WEIGHT", 2.0 if LLM_BACKEND == "openai" else 1.0, minimum=1.0, maximum=1000.0
)
# Let the model draft the reply from the chosen past answers (checked for grounding, else the stored
# answer): "on", "off", or "auto": on where the answer ranker's history evaluation recorded that drafts
# beat the chosen stored answer (retrieval.answer_services.drafting_wins).
LLM_DRAFT_REPLIES = env.switch("LLM_DRAFT_REPLIES", "auto")
# Below this calibrated suggestion confidence (the chance the chosen stored answer is usable), no
# answer is suggested: the agent sees the similar tickets instead. Chosen on bitext (README): 0.5 keeps
# abstention under 10% (8.1% of test tickets); usable among shown is then 81%, short of 95%, which
# history says would need 0.93 and leave 92% of tickets without a suggestion.
SUGGESTION_MIN_CONFIDENCE = env.number("SUGGESTION_MIN_CONFIDENCE", 0.5, minimum=0.0, maximum=1.0)

# --- the pipeline (tickets.pipeline) -------------------------------------------------------------
COMPANY_NAME = env.text("COMPANY_NAME", "Lumenfield")
# When the model is asked: "auto" where the decision is unsure (see tickets.pipeline.policy),
# "always", or "never" (retrieval alone).
PIPELINE_USE_MODEL = env.choice("PIPELINE_USE_MODEL", "auto", ("auto", "always", "never"))
# A ticket flagged as a prompt-injection attempt: "triage" (default) sends it to a person whatever the
# decision, "clean_part" decides and routes it on the text left after the injected passages are removed.
# Either way the injected passages are not evidence (see tickets.pipeline.screening).
INJECTION_POLICY = env.choice("INJECTION_POLICY", "triage", ("triage", "clean_part"))
# The languages a ticket's language is chosen among (ISO 639-1 codes of py3langid's 97; "all": every
# one). A short list is more accurate on short tickets (tickets.pipeline.language).
LANGUAGE_CANDIDATES = [
    code.lower()
    for code in env.csv_list("LANGUAGE_CANDIDATES", ("en", "de", "es", "fr", "it", "pt", "nl"))
    if code.lower() != "all"
]
# A ticket in a language with fewer resolved history tickets than this goes to triage with that reason
# rather than to a team chosen on evidence in other languages (0: never). Tickets whose language cannot
# be told are routed as usual, and so is every ticket while no history ticket has a language recorded.
# 5: the demo's 6 German and 5 Spanish past tickets route its German and Spanish tickets right (0.99+).
LANGUAGE_MIN_HISTORY_TICKETS = env.integer("LANGUAGE_MIN_HISTORY_TICKETS", 5, minimum=0)
PIPELINE_TOP_K = env.integer("PIPELINE_TOP_K", 5, minimum=1, maximum=50)
PIPELINE_BATCH_SIZE = env.integer("PIPELINE_BATCH_SIZE", 16, minimum=1, maximum=512)
PIPELINE_DUPLICATE_SIMILARITY = env.number("PIPELINE_DUPLICATE_SIMILARITY", 0.93, minimum=0, maximum=1)
PIPELINE_STAGE_TIMEOUT_SECONDS = env.integer("PIPELINE_STAGE_TIMEOUT_SECONDS", 600, minimum=1)
PIPELINE_REQUEUE_AFTER_SECONDS = env.integer("PIPELINE_REQUEUE_AFTER_SECONDS", 120, minimum=1)
PIPELINE_MAX_ATTEMPTS = env.integer("PIPELINE_MAX_ATTEMPTS", 3, minimum=1, maximum=20)
PIPELINE_SWEEP_SECONDS = env.number("PIPELINE_SWEEP_SECONDS", 60.0, minimum=1)
# New tickets' first messages wait this long in the web process for others, to go as one message per
# batch (tickets/pipeline/starter.py); 0 sends each at once, in the request.
PIPELINE_ENQUEUE_LINGER_MS = env.integer("PIPELINE_ENQUEUE_LINGER_MS", 20, minimum=0, maximum=1000)
# How often the label model is refitted on the knowledge base (resolved tickets keep joining it).
LABEL_MODEL_RETRAIN_HOURS = env.number("LABEL_MODEL_RETRAIN_HOURS", 24.0, minimum=0.01)
# Decision model lifecycle (tickets.services.model_registry). A promotion to canary or active whose
# accuracy on held-back history is worse than the active version's by more than this margin needs an
# explicit override with a reason.
MODEL_PROMOTION_MARGIN = env.number("MODEL_PROMOTION_MARGIN", 0.02, minimum=0, maximum=1)
# The periodic retrain registers a candidate and shadows it; "auto" promotes it to active after
# MODEL_SHADOW_HOURS when the gate holds, "manual" leaves that to an admin.
MODEL_PROMOTION = env.choice("MODEL_PROMOTION", "manual", ("auto", "manual"))
MODEL_SHADOW_HOURS = env.number("MODEL_SHADOW_HOURS", 24.0, minimum=0)
# The share of live tickets (a stable hash of the id) a shadow version decides on the side.
MODEL_SHADOW_SHARE = env.number("MODEL_SHADOW_SHARE", 1.0, minimum=0, maximum=1)
# Shadow decisions yield to live traffic: a worker that consumes only the shadow queue holds each
# shadow task while the live stage queues (Redis) have messages waiting, up to this many seconds after
# the active decision, then decides anyway (tickets/pipeline/shadow_yield.py). 0: never wait. At most
# 1800, so the task's time limits (this plus CELERY_TASK_*_TIME_LIMIT) stay under the broker's
# visibility timeout (3600 s).
MODEL_SHADOW_MAX_DEFER_SECONDS = env.number("MODEL_SHADOW_MAX_DEFER_SECONDS", 300.0, minimum=0, maximum=1800)
# The newest share of the labelled history held back from a retrained candidate to evaluate it on.
MODEL_HOLDOUT_SHARE = env.number("MODEL_HOLDOUT_SHARE", 0.2, minimum=0.05, maximum=0.5)
# How often the clusters of tickets of no known category (the admins' emerging topics) are recomputed.
EMERGING_TOPICS_REFRESH_HOURS = env.number("EMERGING_TOPICS_REFRESH_HOURS", 6.0, minimum=0.01)
# Each stage's task on its own queue, as the stage table says (plain data: no Django in that module).
CELERY_TASK_ROUTES = dict(pipeline_stages.TASK_ROUTES)
CELERY_BEAT_SCHEDULE = {
    "sweep-stuck-tickets": {"task": "tickets.sweep_stuck_tickets", "schedule": PIPELINE_SWEEP_SECONDS},
    "requeue-stale-webhooks": {"task": "tickets.webhook_requeue_stale", "schedule": PIPELINE_SWEEP_SECONDS},
    "retrain-label-model": {
        "task": "tickets.retrain_decision_model",
        "schedule": LABEL_MODEL_RETRAIN_HOURS * 3600,
    },
    "promote-shadowed-models": {
        "task": "tickets.promote_shadowed_models",
        "schedule": min(900.0, max(60.0, MODEL_SHADOW_HOURS * 900)),
    },
    "retrain-answer-ranker": {
        "task": "tickets.retrain_answer_ranker",
        "schedule": LABEL_MODEL_RETRAIN_HOURS * 3600,
    },
    "refresh-emerging-topics": {
        "task": "tickets.refresh_emerging_topics",
        "schedule": EMERGING_TOPICS_REFRESH_HOURS * 3600,
    },
}

# --- retrieval -----------------------------------------------------------------------------------
# The int8 ONNX export of all-MiniLM-L6-v2: 2.4x the plain backend's throughput on one core, same
# routing accuracy (benchmarks/bench_embeddings.py). "all-MiniLM-L6-v2" selects the plain backend.
EMBEDDING_MODEL = env.choice(
    "EMBEDDING_MODEL", "all-MiniLM-L6-v2-onnx-int8", ("all-MiniLM-L6-v2-onnx-int8", "all-MiniLM-L6-v2")
)
INDEX_DIR = env.path("INDEX_DIR", DATA_DIR / "index")
# Use the embedding model tuned on the company's history (manage.py train_classifier --tune-embeddings)
# when one has been adopted and checks out; false keeps the shipped model (and rebuilds the index on it).
TUNED_EMBEDDINGS = env.boolean("TUNED_EMBEDDINGS", True)
# The tuning's budget (retrieval.embedding_tuning): seconds of training and optimiser steps, whichever
# comes first. The defaults keep the whole fit on 10,000 tickets within ~15 minutes on 2 cores.
EMBEDDING_TUNING_SECONDS = env.number("EMBEDDING_TUNING_SECONDS", 360.0, minimum=1, maximum=86_400)
EMBEDDING_TUNING_STEPS = env.integer("EMBEDDING_TUNING_STEPS", 300, minimum=1, maximum=1_000_000)
# Threads per process for torch, FAISS and llama.cpp. On small machines one thread per process,
# scaled with processes, beats several threads in one.
SWITCHBOARD_THREADS = env.integer("SWITCHBOARD_THREADS", 1, minimum=1, maximum=256)

# --- the web UI (tickets.views) ------------------------------------------------------------------
# Tickets one client address may submit through the public form per hour; beyond it, a 429 page.
SUBMIT_RATE_LIMIT_PER_HOUR = env.integer("SUBMIT_RATE_LIMIT_PER_HOUR", 20, minimum=1, maximum=1_000_000)
# Reverse proxies in front of the web process that append the client to X-Forwarded-For; 0 trusts
# no header and uses the connection's address.
TRUSTED_PROXY_HOPS = env.integer("TRUSTED_PROXY_HOPS", 0, minimum=0, maximum=10)
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "tickets:dashboard"
LOGOUT_REDIRECT_URL = "login"

# --- secrets -------------------------------------------------------------------------------------
SECRET_KEY = env.optional_text("SECRET_KEY") or ""
SECRET_KEY_FILE = env.optional_text("SECRET_KEY_FILE")

LOG_LEVEL = env.choice("LOG_LEVEL", "info", ("debug", "info", "warning", "error")).upper()

# --- production, health and metrics (inference_app.health, inference_app.metrics, deploy/) ---------
DJANGO_ENV = env.choice("DJANGO_ENV", "development", ("development", "production"))
PRODUCTION = DJANGO_ENV == "production"
LOG_FORMAT = env.choice("LOG_FORMAT", "json" if PRODUCTION else "text", ("json", "text"))
METRICS_TOKEN = env.optional_text("METRICS_TOKEN")
METRICS_CACHE_SECONDS = env.integer("METRICS_CACHE_SECONDS", 10, minimum=0, maximum=3600)
HEALTH_CHECK_TIMEOUT_SECONDS = env.number("HEALTH_CHECK_TIMEOUT_SECONDS", 2.0, minimum=0.1, maximum=30)
READYZ_REQUIRE_MODEL = env.boolean("READYZ_REQUIRE_MODEL", False)
SECURE_SSL_REDIRECT = env.boolean("SECURE_SSL_REDIRECT", PRODUCTION)
SECURE_HSTS_SECONDS = env.integer("SECURE_HSTS_SECONDS", 31_536_000 if PRODUCTION else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.boolean("SECURE_HSTS_INCLUDE_SUBDOMAINS", PRODUCTION)
SECURE_HSTS_PRELOAD = env.boolean("SECURE_HSTS_PRELOAD", PRODUCTION)
if PRODUCTION:
    if DEBUG:
        env.errors.append("DEBUG=true: never with DJANGO_ENV=production (tracebacks would be public)")
    if not (env.is_set("SECRET_KEY") or env.is_set("SECRET_KEY_FILE")):
        env.errors.append("SECRET_KEY or SECRET_KEY_FILE must be set with DJANGO_ENV=production")
    if not env.is_set("ALLOWED_HOSTS"):
        env.errors.append("ALLOWED_HOSTS must name the site's host names with DJANGO_ENV=production")

# --- the REST API and webhooks (tickets.api, tickets.services.webhooks) -----------------------------------
API_RATE_LIMIT_PER_MINUTE = env.integer("API_RATE_LIMIT_PER_MINUTE", 600, minimum=1)
API_MAX_BODY_BYTES = env.integer("API_MAX_BODY_BYTES", 1_048_576, minimum=1024)
API_MAX_IMPORT_BYTES = env.integer("API_MAX_IMPORT_BYTES", 200 * 1_048_576, minimum=1024)
# POST /api/v1/tickets/batch: items per request, and its body limit (up to that many tickets' text).
API_BATCH_MAX_ITEMS = env.integer("API_BATCH_MAX_ITEMS", 100, minimum=1, maximum=1000)
API_BATCH_MAX_BODY_BYTES = env.integer("API_BATCH_MAX_BODY_BYTES", 8 * 1_048_576, minimum=1024)
API_SEARCH_TIMEOUT_SECONDS = env.number("API_SEARCH_TIMEOUT_SECONDS", 10.0, minimum=0.1)
WEBHOOK_TIMEOUT_SECONDS = env.number("WEBHOOK_TIMEOUT_SECONDS", 5.0, minimum=0.1)
WEBHOOK_MAX_ATTEMPTS = env.integer("WEBHOOK_MAX_ATTEMPTS", 8, minimum=1, maximum=50)
WEBHOOK_RETRY_BASE_SECONDS = env.number("WEBHOOK_RETRY_BASE_SECONDS", 5.0, minimum=0.01)
WEBHOOK_RETRY_MAX_SECONDS = env.number("WEBHOOK_RETRY_MAX_SECONDS", 3600.0, minimum=0.01)

try:
    env.raise_for_errors()
except ConfigError as exc:
    sys.stderr.write(f"Switchboard cannot start, bad configuration: {exc}\n")
    raise SystemExit(2) from None

# Child processes (embedding workers, model caches) find the data directory here too.
os.environ.setdefault("SWITCHBOARD_DATA_DIR", str(DATA_DIR))

for _directory in (
    DATA_DIR,
    BROKER_DIR / "queue",
    BROKER_DIR / "processed",
    BROKER_DIR / "control",
    DATA_DIR / "results",
    INDEX_DIR,
):
    _directory.mkdir(parents=True, exist_ok=True)


def _load_or_create_secret_key() -> str:
    """SECRET_KEY, else SECRET_KEY_FILE, else a key generated once and kept in the data directory."""
    if SECRET_KEY:
        return SECRET_KEY
    path = Path(SECRET_KEY_FILE) if SECRET_KEY_FILE else DATA_DIR / "secret_key"
    if path.is_file():
        return path.read_text(encoding="utf-8").strip()
    if SECRET_KEY_FILE:
        sys.stderr.write(
            f"Switchboard cannot start, bad configuration: SECRET_KEY_FILE={path} does not exist\n"
        )
        raise SystemExit(2)
    key = secrets.token_urlsafe(50)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(key, encoding="utf-8")
    tmp.chmod(0o600)
    tmp.replace(path)
    return key


SECRET_KEY = _load_or_create_secret_key()

# --- Django --------------------------------------------------------------------------------------
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_filters",
    "inference_app",  # its management commands (export_vllm_checkpoint)
    "retrieval",
    "tickets",
]

MIDDLEWARE = [
    "inference_app.logging.RequestIdMiddleware",
    "inference_app.metrics.MetricsMiddleware",
    "inference_app.health.ProbeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "inference_app.urls"
WSGI_APPLICATION = "inference_app.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(DATA_DIR / "cache"),
        }
    }

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", DATA_DIR / "static")
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

# HTTPS and cookies. In production TLS ends at the load balancer or ingress, which says so in
# X-Forwarded-Proto; probes and scrapes inside the cluster stay on plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
if PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    # Hashed file names (cached for a year by browsers), written by collectstatic at image build.
    STORAGES["staticfiles"] = {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"}
    WHITENOISE_USE_FINDERS = False

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Content-Security-Policy on every response (django-csp). No inline script and no inline style
# anywhere: our pages, the admin and the API docs load scripts and styles from our own static files
# only (the vendored HTMX included), so an injected <script> or style="" in ticket text does nothing.
# The one exception is the Redoc page (tickets.api.docs): Redoc writes its styles into <style> tags.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        # Swagger UI's and the admin's stylesheets draw icons from data: URLs.
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
}

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Switchboard API",
    "DESCRIPTION": "Support tickets in, routing decisions and grounded suggestions out.",
    "VERSION": "1.0.0",
    # The docs pages load Swagger UI and Redoc from this server's static files, never a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "tickets.api.schema.add_error_responses",
        "tickets.api.webhook_schema.add_webhook_payloads",
    ],
    "ENUM_NAME_OVERRIDES": {
        "TicketStatusEnum": "tickets.models.TicketStatus",
        "PipelineStageEnum": "tickets.pipeline.stages.CHOICES",
        "AuditStageEnum": "tickets.models.AuditEvent.Stage",
        "WebhookEventEnum": "tickets.models.WebhookEvent",
        "DeliveryStatusEnum": "tickets.models.WebhookDelivery.Status",
        "ImportStatusEnum": "tickets.models.ImportJob.Status",
    },
}

LOGGING = logging_config(log_format=LOG_FORMAT, level=LOG_LEVEL)
