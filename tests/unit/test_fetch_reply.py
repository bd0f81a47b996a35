"""The fetcher's HTTP reply reader on raw bytes (sendready.fetch): lengths, chunks, limits and
garbage, without a socket."""

from __future__ import annotations

import asyncio

from sendready.fetch import FetchError, FetchResult, _read_response

BASE = FetchResult("https://h.test/x", "h.test")


def read(raw: bytes, limit: int = 100) -> FetchResult:
    async def go() -> FetchResult:
        reader = asyncio.StreamReader(limit=16 * 1024)
        reader.feed_data(raw)
        reader.feed_eof()
        return await _read_response(BASE, "192.0.2.1", reader, limit)

    return asyncio.run(go())


def test_content_length_and_media_type() -> None:
    r = read(
        b"HTTP/1.1 200 OK\r\nContent-Type: Text/Plain; charset=utf-8\r\n"
        b"Content-Length: 5\r\n\r\nhello"
    )
    assert (r.status, r.media_type, r.body, r.ok) == (200, "text/plain", b"hello", True)


def test_chunked_body() -> None:
    r = read(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n"
    )
    assert r.body == b"abcde"


def test_limits_hold_for_every_framing() -> None:
    big = b"x" * 101
    assert (
        read(b"HTTP/1.1 200 OK\r\nContent-Length: 101\r\n\r\n" + big).error is FetchError.TOO_LARGE
    )
    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n65\r\n" + big + b"\r\n0\r\n\r\n"
    )
    assert read(chunked).error is FetchError.TOO_LARGE
    assert read(b"HTTP/1.1 200 OK\r\n\r\n" + big).error is FetchError.TOO_LARGE


def test_garbage_is_an_http_error() -> None:
    assert read(b"SSH-2.0-OpenSSH\r\n\r\n").error is FetchError.HTTP
    assert read(b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n").error is FetchError.HTTP
    huge = b"HTTP/1.1 200 OK\r\n" + b"X-A: " + b"a" * 17000 + b"\r\n\r\n"
    assert read(huge).error is FetchError.HTTP
    assert read(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n").error is (
        FetchError.HTTP
    )
    assert read(b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nshort").error is FetchError.HTTP
