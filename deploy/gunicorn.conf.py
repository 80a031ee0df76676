"""gunicorn settings for moralcredit behind nginx (docs/deploy.md):
`gunicorn -c deploy/gunicorn.conf.py wsgi:app`. Environment overrides: GUNICORN_BIND, GUNICORN_WORKERS,
GUNICORN_THREADS, GUNICORN_TIMEOUT."""

import multiprocessing
import os

# nginx on the same host talks to this address; another host's nginx needs a private address here
# and that address in forwarded_allow_ips.
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")

# Requests mostly wait on PostgreSQL: a few processes with a few threads each. Each thread may hold
# one database connection: workers × threads × app hosts (+ scheduler, + commands) must stay below
# PostgreSQL's max_connections (docs/deploy.md "PostgreSQL").
workers = int(os.environ.get("GUNICORN_WORKERS", min(2 * multiprocessing.cpu_count() + 1, 9)))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", 4))

# A bulk import through the admin page may take half a minute; nginx's proxy_read_timeout is longer.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", 60))
graceful_timeout = 30
keepalive = 5

# Recycle workers now and then (memory), staggered so that they never all restart at once.
max_requests = 2000
max_requests_jitter = 200

# The app is built in each worker after the fork: no database connection crosses a fork.
preload_app = False
worker_tmp_dir = "/dev/shm"

# Only nginx on this host may say the request came over HTTPS (X-Forwarded-Proto); the client's
# address is taken from X-Forwarded-For by the app (MORALCREDIT_TRUSTED_PROXIES).
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")

# Logs go to stdout/stderr, hence to the journal under systemd.
accesslog = "-"
errorlog = "-"
loglevel = "info"
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms "%(a)s"'
proc_name = "moralcredit"
