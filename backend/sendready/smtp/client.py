"""A small asyncio SMTP client for probes: bounded replies, STARTTLS and implicit TLS on one
path, and a transcript in which AUTH data never appears.

It never sends mail: probes use EHLO, STARTTLS, AUTH and QUIT only. Every read is bounded in
line length and line count, so a hostile server (garbage, an endless line, a flood of
continuation lines) ends the conversation with a :class:`ProtocolError` instead of memory
growth or a hang; the caller bounds the time.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
from dataclasses import dataclass

#: RFC 5321 §4.5.3.1.5 allows 512 octets per reply line; real servers stay well under it.
#: Twice that leaves room for sloppy servers while still stopping an endless line early.
MAX_LINE = 1024
MAX_LINES = 100
TRANSCRIPT_LINES = 80
_REPLY_LINE = re.compile(rb"^([2-5]\d\d)([ -])(.*?)\r?\n$", re.DOTALL)


class SmtpError(Exception):
    """The conversation cannot go on; ``stage`` says where it stopped."""

    def __init__(self, message: str, stage: str = "") -> None:
        super().__init__(message)
        self.stage = stage


class ProtocolError(SmtpError):
    """The server sent something that is not an SMTP reply (garbage, too long, too many)."""


class ConnectionClosed(SmtpError):
    """The server closed or reset the connection."""


@dataclass(frozen=True, slots=True)
class Reply:
    code: int
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return " ".join(self.lines)

    @property
    def ok(self) -> bool:
        return 200 <= self.code < 400

    def __str__(self) -> str:
        return f"{self.code} {self.text}".strip()


def parse_ehlo(reply: Reply) -> dict[str, str]:
    """EHLO keywords (upper case) to their parameters; the first line is the greeting."""
    caps: dict[str, str] = {}
    for line in reply.lines[1:]:
        keyword, _, params = line.strip().partition(" ")
        if keyword:
            caps[keyword.upper()] = params.strip()
    return caps


def auth_mechanisms(caps: dict[str, str]) -> tuple[str, ...]:
    """The SASL mechanisms of an EHLO AUTH line (RFC 4954 §3), upper case, in order."""
    return tuple(m.upper() for m in caps.get("AUTH", "").split())


class SmtpClient:
    """One SMTP conversation over asyncio streams."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.transcript: list[str] = []

    @classmethod
    async def connect(cls, address: str, port: int, source: str = "") -> SmtpClient:
        local = (source, 0) if source and (":" in source) == (":" in address) else None
        reader, writer = await asyncio.open_connection(
            address, port, local_addr=local, limit=MAX_LINE
        )
        return cls(reader, writer)

    def _log(self, line: str) -> None:
        if len(self.transcript) < TRANSCRIPT_LINES:
            self.transcript.append(line[:200])

    async def read_reply(self, stage: str) -> Reply:
        code: int | None = None
        lines: list[str] = []
        for _ in range(MAX_LINES):
            try:
                raw = await self.reader.readuntil(b"\n")
            except asyncio.LimitOverrunError:
                raise ProtocolError(
                    f"a reply line longer than {MAX_LINE} bytes (an endless line)", stage
                ) from None
            except asyncio.IncompleteReadError as exc:
                what = "closed the connection"
                if exc.partial:
                    what += f" after a partial line {exc.partial[:60]!r}"
                raise ConnectionClosed(f"the server {what}", stage) from None
            except (ConnectionError, OSError) as exc:
                raise ConnectionClosed(f"the connection failed: {_describe(exc)}", stage) from None
            match = _REPLY_LINE.match(raw)
            if match is None:
                raise ProtocolError(f"not an SMTP reply line: {raw[:80]!r}", stage)
            this_code = int(match.group(1))
            if code is not None and this_code != code:
                raise ProtocolError(
                    f"reply lines with different codes ({code} then {this_code})", stage
                )
            code = this_code
            text = match.group(3).decode("utf-8", errors="replace").strip()
            lines.append(text)
            self._log(f"S: {this_code}{match.group(2).decode()}{text}")
            if match.group(2) == b" ":
                return Reply(code, tuple(lines))
        raise ProtocolError(f"a reply of more than {MAX_LINES} lines", stage)

    async def send(self, line: str, stage: str, *, redact: bool = False) -> None:
        self._log("C: " + (f"[redacted: {len(line)} bytes]" if redact else line))
        try:
            self.writer.write(line.encode("ascii", errors="strict") + b"\r\n")
            await self.writer.drain()
        except (ConnectionError, OSError) as exc:
            raise ConnectionClosed(f"the connection failed: {_describe(exc)}", stage) from None

    async def command(self, line: str, stage: str, *, redact: bool = False) -> Reply:
        await self.send(line, stage, redact=redact)
        return await self.read_reply(stage)

    async def start_tls(self, context: ssl.SSLContext, server_hostname: str | None) -> None:
        """Upgrade the connection in place (STARTTLS, or implicit TLS right after connect)."""
        await self.writer.start_tls(context, server_hostname=server_hostname)
        self._log("-- TLS started --")

    @property
    def ssl_object(self) -> ssl.SSLObject | None:
        obj = self.writer.get_extra_info("ssl_object")
        return obj if isinstance(obj, ssl.SSLObject) else None

    async def quit(self) -> None:
        """Say goodbye politely, but never wait long for it."""
        with contextlib.suppress(SmtpError, TimeoutError, OSError, ssl.SSLError):
            await asyncio.wait_for(self.command("QUIT", "quit"), 1.0)

    def close(self) -> None:
        with contextlib.suppress(OSError, RuntimeError):
            self.writer.close()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ConnectionResetError):
        return "connection reset by the server"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    return str(exc) or type(exc).__name__
