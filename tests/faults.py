"""Faults on the wire: a TCP proxy between the app and a real server, cut at will.

    with TcpProxy("127.0.0.1", 6379) as redis_proxy:
        ... point REDIS_URL at redis_proxy.url("redis", "/15") ...
        redis_proxy.cut()      # as if Redis had stopped
        redis_proxy.restore()  # as if it had started again

`cut()` closes every live connection (both sides) and stops listening, so a new
connection is refused (ECONNREFUSED), exactly as with a server that is not running;
`restore()` listens again on the same port. The shared PostgreSQL and Redis servers
themselves are never touched, so other tests using them are not disturbed.

The proxy is an asyncio loop in a daemon thread; `cut()` and `restore()` return once
done. Bytes are passed through untouched, with back-pressure in both directions.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time

# How long `restore()` keeps trying to listen on the proxy's port again (a socket of the
# cut connections may hold it for a moment).
RELISTEN_SECONDS = 5.0
CHUNK = 64 * 1024


class TcpProxy:
    def __init__(self, upstream_host: str, upstream_port: int):
        self.upstream = (upstream_host, int(upstream_port))
        self.port = 0
        self.accepted = 0  # connections taken since start (every restore included)
        self._cut = False
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.AbstractServer | None = None
        self._live: set[asyncio.StreamWriter] = set()
        self._serving: set[asyncio.Task] = set()

    # ---- life -------------------------------------------------------------------------
    def start(self) -> TcpProxy:
        self._thread.start()
        self._call(self._listen())
        return self

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        try:
            self._call(self._close_all())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            if not self._thread.is_alive():
                self._loop.close()

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ---- faults -----------------------------------------------------------------------
    def cut(self) -> None:
        """The server "stops": live connections are closed, new ones refused."""
        self._call(self._close_all())

    def restore(self) -> None:
        """The server "starts" again on the same address."""
        self._call(self._listen())

    @property
    def is_cut(self) -> bool:
        return self._cut

    @property
    def live_connections(self) -> int:
        return len(self._live) // 2

    def url(self, scheme: str, path: str = "", userinfo: str = "") -> str:
        """e.g. url("redis", "/15") → redis://127.0.0.1:<port>/15."""
        credentials = f"{userinfo}@" if userinfo else ""
        return f"{scheme}://{credentials}127.0.0.1:{self.port}{path}"

    # ---- inside the loop ----------------------------------------------------------------
    def _call(self, coroutine) -> None:
        asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=30)

    async def _listen(self) -> None:
        self._cut = False
        if self._server is not None:
            return
        deadline = time.monotonic() + RELISTEN_SECONDS
        while True:
            try:
                self._server = await asyncio.start_server(
                    self._serve, "127.0.0.1", self.port, reuse_address=True
                )
                break
            except OSError:
                if not self.port or time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.05)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _close_all(self) -> None:
        self._cut = True
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._live):
            writer.transport.abort()
        self._live.clear()
        if self._serving:  # each connection's copying ends on its aborted sockets
            await asyncio.wait(list(self._serving), timeout=5)

    async def _serve(self, client_reader, client_writer) -> None:
        if self._cut:
            client_writer.transport.abort()
            return
        self.accepted += 1
        task = asyncio.current_task()
        self._serving.add(task)
        task.add_done_callback(self._serving.discard)
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            client_writer.transport.abort()
            return
        if self._cut:  # cut while this connection was reaching the server
            client_writer.transport.abort()
            upstream_writer.transport.abort()
            return
        for writer in (client_writer, upstream_writer):
            writer.transport.get_extra_info("socket").setsockopt(
                socket.IPPROTO_TCP, socket.TCP_NODELAY, 1
            )
        pair = {client_writer, upstream_writer}
        self._live |= pair
        try:
            await asyncio.gather(
                _pump(client_reader, upstream_writer),
                _pump(upstream_reader, client_writer),
            )
        finally:
            self._live -= pair
            for writer in pair:
                writer.transport.abort()


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy one direction until it ends; then end the other side's writing too."""
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        writer.transport.abort()
