"""Misbehaving SMTP servers for fault tests (TESTING.md §11), on asyncio in one thread.

Each :class:`Behaviour` is one way a real server goes wrong: no STARTTLS, a bad certificate,
a slow banner, a reset right after ``220 Ready to start TLS``, a 421 greeting, garbage,
an endless line, TLS 1.1 only. Every wait and every loop here is bounded, so a server never
outlives its test by more than its own stated delay.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass

MAX_COMMANDS = 50
ENDLESS_BYTES = 4 * 1024 * 1024  # more than any client should buffer, bounded anyway


@dataclass(frozen=True)
class Behaviour:
    name: str = "mx.hostile.test"  # the banner name
    banner_delay: float = 0.0
    greeting: str = ""  # a non-220 greeting, sent instead of the banner, then hang up
    starttls: bool = True  # advertise STARTTLS
    tls: ssl.SSLContext | None = None  # the server context for STARTTLS
    reset_after_starttls: bool = False
    garbage_after_ehlo: bool = False
    endless_line: bool = False
    auth_before_tls: bool = False
    #: Answer the ClientHello with a TLS protocol_version alert, as a server does whose
    #: highest version (TLS 1.0/1.1) is below the client's lowest. Modern OpenSSL will not
    #: speak TLS 1.1 at all, so the alert is written by hand.
    old_tls_only: bool = False


class HostileSmtp:
    """Serves each address with its behaviour on port ``port``, until :meth:`stop`."""

    def __init__(self, port: int = 25) -> None:
        self.port = port
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._servers: list[asyncio.Server] = []
        self._blackholes: list[socket.socket] = []
        self.connections: dict[str, int] = {}

    def start(self) -> None:
        self._thread.start()

    def serve(self, address: str, behaviour: Behaviour) -> None:
        async def start() -> asyncio.Server:
            return await asyncio.start_server(
                lambda r, w: self._handle(address, behaviour, r, w), address, self.port
            )

        self._servers.append(asyncio.run_coroutine_threadsafe(start(), self.loop).result(5))

    def blackhole(self, address: str) -> None:
        """A port that never completes a TCP handshake: a listener whose accept queue is full.

        Linux drops SYNs to a full queue, so a client's connect hangs until its own timeout,
        as behind a firewall that drops port 25. The queue is filled by connections that
        are never accepted.
        """
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((address, self.port))
        listener.listen(0)
        self._blackholes.append(listener)
        for _ in range(3):
            filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect((address, self.port))
            self._blackholes.append(filler)

    def stop(self) -> None:
        async def close() -> None:
            for server in self._servers:
                server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(close(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        for sock in self._blackholes:
            sock.close()

    async def _handle(
        self,
        address: str,
        b: Behaviour,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.connections[address] = self.connections.get(address, 0) + 1
        try:
            await self._converse(b, reader, writer)
        except (ConnectionError, OSError, ssl.SSLError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:  # the fixture is stopping
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def _converse(
        self, b: Behaviour, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        if b.banner_delay:
            await asyncio.sleep(b.banner_delay)
        if b.greeting:
            writer.write(b.greeting.encode() + b"\r\n")
            await writer.drain()
            return
        if b.endless_line:
            writer.write(b"220 ")
            sent = 0
            while sent < ENDLESS_BYTES:
                writer.write(b"x" * 65536)
                await writer.drain()
                sent += 65536
            return
        writer.write(f"220 {b.name} ESMTP hostile\r\n".encode())
        await writer.drain()
        in_tls = False
        for _ in range(MAX_COMMANDS):
            line = await asyncio.wait_for(reader.readline(), 30)
            if not line:
                return
            verb = line.strip().split(b" ", 1)[0].upper()
            if verb in (b"EHLO", b"HELO"):
                if b.garbage_after_ehlo:
                    writer.write(b"hello friend, this is not SMTP\r\n\x00\xff\r\n")
                    await writer.drain()
                    continue
                caps = [b.name, "PIPELINING", "8BITMIME"]
                if b.starttls and b.tls is not None and not in_tls:
                    caps.append("STARTTLS")
                if in_tls or b.auth_before_tls:
                    caps.append("AUTH PLAIN LOGIN")
                text = "".join(f"250-{c}\r\n" for c in caps[:-1]) + f"250 {caps[-1]}\r\n"
                writer.write(text.encode())
            elif verb == b"STARTTLS" and b.starttls and b.tls is not None and not in_tls:
                writer.write(b"220 2.0.0 Ready to start TLS\r\n")
                await writer.drain()
                if b.old_tls_only:
                    await asyncio.wait_for(reader.read(4096), 5)  # the ClientHello
                    # record: alert (21), TLS 1.0 (3,1), length 2; fatal (2), protocol_version (70)
                    writer.write(bytes([21, 3, 1, 0, 2, 2, 70]))
                    await writer.drain()
                    return
                if b.reset_after_starttls:
                    sock = writer.get_extra_info("socket")
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    writer.transport.abort()  # with linger 0: an RST, not a FIN
                    return
                await writer.start_tls(b.tls)
                in_tls = True
                continue
            elif verb == b"QUIT":
                writer.write(b"221 2.0.0 Bye\r\n")
                await writer.drain()
                return
            else:
                writer.write(b"502 5.5.2 Not implemented\r\n")
            await writer.drain()


def server_context(chain: str, key: str) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(chain, key)
    return ctx


@contextlib.contextmanager
def running(port: int = 25) -> Iterator[HostileSmtp]:
    server = HostileSmtp(port)
    server.start()
    try:
        yield server
    finally:
        server.stop()
