"""Real subprocesses against the pytest test database: a Celery worker, a poller.

A worker runs with the production settings module (tasks not eager), pointed at the
test database pytest-django created and at the Redis named by REDIS_URL; while one is
running, this process stops running tasks eagerly, so what a test enqueues really goes
through Redis to the worker. Tests using them need a database the subprocess can see:
PostgreSQL, and `django_db(transaction=True)` so the test's rows are committed.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.error import HTTPError
from urllib.parse import quote
from urllib.request import urlopen

from django.conf import settings
from django.db import connection

from servicedesk import celery_app

READY_TIMEOUT = 30
WAIT_TIMEOUT = 20


def database_url() -> str:
    """The test database as a DATABASE_URL a subprocess can use."""
    db = connection.settings_dict
    assert connection.vendor == "postgresql"
    user = quote(db.get("USER") or "", safe="")
    password = quote(db.get("PASSWORD") or "", safe="")
    credentials = f"{user}:{password}@" if password else f"{user}@"
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return f"postgres://{credentials}{host}:{port}/{quote(db['NAME'], safe='')}"


def subprocess_env(database: str, **extra: str) -> dict[str, str]:
    """The environment of a servicedesk subprocess: production settings, test database."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "servicedesk.settings",
        "SECRET_KEY": settings.SECRET_KEY,
        "DEBUG": "0",
        "DATABASE_URL": database,
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


class Process:
    """A subprocess whose output goes to a log file."""

    def __init__(self, process: subprocess.Popen, log_path: Path):
        self.process = process
        self.log_path = log_path

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def wait_for(self, predicate, what: str, timeout: float = WAIT_TIMEOUT):
        """Poll until predicate() is truthy; fail with the process's output otherwise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            assert self.process.poll() is None, (
                f"process exited ({self.process.returncode}) while waiting for {what}:\n"
                + self.log_tail()
            )
            time.sleep(0.05)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}:\n{self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to clean up, as after a crash or OOM kill."""
        assert self.process.poll() is None, f"already exited:\n{self.log_tail()}"
        os.kill(self.pid, signal.SIGKILL)
        assert self.process.wait(timeout=10) == -signal.SIGKILL

    def stop(self) -> None:
        """Terminate (then kill) if still running; always reaped."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def spawn(command: list[str], env: dict[str, str], log_path: Path) -> Process:
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter, fixed arguments
            command,
            cwd=settings.BASE_DIR,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    return Process(process, log_path)


class Worker(Process):
    def __init__(self, process: subprocess.Popen, log_path: Path, nodename: str):
        super().__init__(process, log_path)
        self.nodename = nodename

    def task_results(self, task_id: str) -> list[str]:
        pattern = rf"Task tickets\.reply_publish\[{re.escape(task_id)}\] succeeded in [^:]+: (.*)"
        return re.findall(pattern, self.log())

    def received_task_ids(self) -> list[str]:
        return re.findall(r"Task [\w.]+\[([0-9a-f-]{36})\] received", self.log())


@contextmanager
def celery_worker(database: str, log_path: Path) -> Iterator[Worker]:
    """A real `celery worker --pool=solo` on the servicedesk queue, stopped afterwards.

    With the solo pool the worker's main process runs the tasks itself: its pid is the
    process inside a task (the one a test kills to interrupt one).
    """
    with celery_worker_with(database, log_path) as running:
        yield running
        if running.process.poll() not in (None, 0, -signal.SIGTERM, -signal.SIGKILL):
            print(f"celery worker exited with {running.process.returncode}:\n{running.log_tail()}")


def forget_unacked(task_ids: list[str]) -> int:
    """Drop these tasks from the Redis broker's unacknowledged set.

    A task whose worker was killed stays unacknowledged; kombu would hand it to some
    worker again once the visibility timeout (an hour) passes — possibly in a later
    test session, against another test database. Returns how many were dropped.
    """
    wanted = set(task_ids)
    dropped = 0
    with celery_app.connection_for_write() as conn:
        client = conn.default_channel.client
        for tag, raw in client.hgetall("unacked").items():
            message = json.loads(raw)[0]
            if message.get("headers", {}).get("id") in wanted:
                client.hdel("unacked", tag)
                client.zrem("unacked_index", tag)
                dropped += 1
    return dropped


def sockets_to(pid: int, port: int) -> list[str]:
    """TCP states (/proc/net/tcp codes: 01 established, 02 SYN sent) of the process's
    sockets connected to 127.0.0.1:port — proof of which process is inside a call."""
    inodes = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    for fd in fd_dir.iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue  # closed meanwhile
        match = re.fullmatch(r"socket:\[(\d+)\]", target)
        if match:
            inodes.add(match.group(1))
    states = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            remote_port = int(fields[2].rsplit(":", 1)[1], 16)
            if remote_port == port and fields[9] in inodes:
                states.append(fields[3])
    return states


# ---- a web server, and a worker with its own environment (tests/reliability) ----------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class WebServer(Process):
    def __init__(self, process: subprocess.Popen, log_path: Path, port: int):
        super().__init__(process, log_path)
        self.port = port
        self.url = f"http://127.0.0.1:{port}"

    def booted_workers(self) -> int:
        """Worker processes gunicorn has started so far (a restarted one counts again)."""
        return len(re.findall(r"Booting worker with pid", self.log()))


def _answers(url: str) -> bool:
    try:
        with urlopen(url, timeout=2):  # noqa: S310 - our own server on 127.0.0.1
            return True
    except HTTPError:
        return True  # an answer all the same (503 while a dependency is down)
    except OSError:
        return False


@contextmanager
def gunicorn_server(
    database: str, log_path: Path, *, workers: int = 2, env: dict[str, str] | None = None
) -> Iterator[WebServer]:
    """gunicorn as production runs it (servicedesk/gunicorn_conf.py, servicedesk.wsgi,
    DEBUG=0) on a free port of 127.0.0.1, stopped afterwards. `env` overrides the
    environment (REDIS_URL through a proxy, say)."""
    port = free_port()
    extra = {
        "BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": str(workers),
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "0",
        "PROMETHEUS_MULTIPROC_DIR": str(log_path.parent / f"{log_path.stem}-metrics"),
        **(env or {}),
    }
    Path(extra["PROMETHEUS_MULTIPROC_DIR"]).mkdir(exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "-c",
        str(Path(settings.BASE_DIR) / "servicedesk" / "gunicorn_conf.py"),
        "servicedesk.wsgi",
    ]
    process = spawn(command, subprocess_env(database, **extra), log_path)
    server = WebServer(process.process, log_path, port)
    try:
        server.wait_for(
            lambda: server.booted_workers() >= workers and _answers(f"{server.url}/healthz"),
            "gunicorn to answer",
            timeout=READY_TIMEOUT,
        )
        yield server
    finally:
        server.stop()


@contextmanager
def celery_worker_with(
    database: str,
    log_path: Path,
    *,
    env: dict[str, str] | None = None,
    pool: str = "solo",
    concurrency: int = 1,
) -> Iterator[Worker]:
    """`celery_worker`, with environment overrides (REDIS_URL through a proxy, say) and
    a choice of pool. The broker's queue is purged first, with the "drain queued" mark
    (its drain purged, it would hold back wake-ups for WAKE_TIMEOUT seconds), and this
    process stops running tasks eagerly while the worker runs."""
    from django.core.cache import cache

    from connectors.services.deliveries import WAKE_KEY

    nodename = f"sdtest-{uuid.uuid4().hex[:8]}@localhost"
    was_eager = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = False
    celery_app.control.purge()
    cache.delete(WAKE_KEY)
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "servicedesk",
        "worker",
        f"--pool={pool}",
        f"--concurrency={concurrency}",
        "-Q",
        settings.CELERY_TASK_DEFAULT_QUEUE,
        "--loglevel=INFO",
        "-n",
        nodename,
        "--without-mingle",
        "--without-gossip",
    ]
    process = spawn(command, subprocess_env(database, **(env or {})), log_path)
    running = Worker(process.process, log_path, nodename)
    try:
        running.wait_for(
            lambda: celery_app.control.ping(destination=[nodename], timeout=0.5),
            "the worker to answer a ping",
            timeout=READY_TIMEOUT,
        )
        yield running
    finally:
        celery_app.conf.task_always_eager = was_eager
        running.stop()
        celery_app.control.purge()


def worker_idle(worker: Worker) -> bool:
    """Every task the worker received so far has finished (succeeded, raised or was
    set to retry), by its log."""
    finished = re.findall(
        r"Task [\w.]+\[([0-9a-f-]{36})\] (?:succeeded|raised|retry)", worker.log()
    )
    return sorted(worker.received_task_ids()) == sorted(finished)
