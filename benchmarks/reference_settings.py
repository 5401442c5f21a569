"""Settings for benchmarks/bench_api.py's web server: the project's, with the benchmark-only URLconf
that adds the bare reference endpoint (``benchmarks/reference_urls.py``)."""

from inference_app.settings import *  # noqa: F403

ROOT_URLCONF = "benchmarks.reference_urls"
