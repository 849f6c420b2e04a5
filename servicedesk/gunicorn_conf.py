"""gunicorn settings for production: `gunicorn -c servicedesk/gunicorn_conf.py servicedesk.wsgi`.

Every value can be changed from the environment (WEB_CONCURRENCY, PORT, …). Scale out by
running more of these processes on more machines behind the load balancer.
"""

import multiprocessing
import os
import tempfile

bind = os.environ.get("BIND", f"0.0.0.0:{os.environ.get('PORT', '8000')}")
# Threaded workers (gthread): a process serves several requests at once, so a webhook
# waiting on PostgreSQL's commit does not hold a whole process, and keep-alive
# connections cost no process each. `bench/webhooks.py` measures this against one
# request per process ("sync", WEB_THREADS=1): on two cores it acknowledged about 330
# signed deliveries a second with 4 sync workers, and 500 with 3 workers x 4 threads.
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() + 1))
threads = int(os.environ.get("WEB_THREADS", "4"))
# Webhook platforms wait a few seconds at most; a request that takes longer is a fault.
timeout = int(os.environ.get("WEB_TIMEOUT", "30"))
graceful_timeout = 30
keepalive = 5
# A worker is replaced after this many requests (a guard against slow leaks). Each
# replacement costs about a second of CPU and a few slow first requests, so at hundreds
# of deliveries a second it must be rare: every few minutes per worker, not every few
# seconds.
max_requests = int(os.environ.get("WEB_MAX_REQUESTS", "100000"))
max_requests_jitter = max_requests // 10
accesslog = None  # the app logs requests as JSON with their request id
errorlog = "-"
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")

# Prometheus counters summed over every worker process of this server.
if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="servicedesk-metrics-")


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
