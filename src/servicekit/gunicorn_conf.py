"""gunicorn settings every service runs with: `gunicorn -c python:servicekit.gunicorn_conf`.

The development stack, the fuzzer's stack, the tests' service processes and production (see
docs/operations/supervision.md) all use this one file, so what is tested is what runs.
Command-line options given after `-c` (`--bind`, `--workers`) override it.
"""

import os

# Threads: a request stuck reading a slow or lying client's body holds one thread, not the
# whole worker; gunicorn cannot time a body read out, so production puts a buffering proxy in
# front (docs/operations/supervision.md).
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
# Above the services' own MAX_URL_LENGTH (4096), so a long URL gets the service's 414
# problem+json answer rather than gunicorn's HTML page; 8190 is gunicorn's maximum.
limit_request_line = 8190
timeout = 30
graceful_timeout = 10
loglevel = "warning"
control_socket_disable = True
