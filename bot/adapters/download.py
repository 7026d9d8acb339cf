"""Downloading a picture from a platform's file host: the whole body, streamed, never more
than a byte cap (both adapters use this; the platform decides the URL and the headers).

``aiohttp``'s ``content.read(n)`` returns what has arrived so far (often one 64 KB piece),
not ``n`` bytes: a body is only whole when the stream has been read to its end. Here the
body is read chunk by chunk until the end; a declared ``Content-Length`` over the cap is
refused before any byte is read, and a body that grows past the cap is dropped as soon as
it does, so at most ``cap + chunk`` bytes are ever held. Redirects are never followed (a
redirect would carry the request's headers, a token among them, to another place).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable, Mapping

import aiohttp

log = logging.getLogger("emojibot.download")

CHUNK = 64 * 1024
# A stalled or trickling file host cannot hold an event for ever.
TIMEOUT = aiohttp.ClientTimeout(total=60, sock_connect=10, sock_read=20)


class DownloadError(Exception):
    """The body could not be had: the message says why (never with a token in it).
    ``transient``: the host may well answer next time (5xx, 429, a network fault), so the
    event that needs the file is worth another try."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status

    @property
    def transient(self) -> bool:
        return self.status is not None and (self.status >= 500 or self.status == 429)


class DownloadUnavailable(DownloadError):
    """The file host could not be reached or timed out: worth another try."""

    @property
    def transient(self) -> bool:
        return True


class TooLarge(DownloadError):
    """The body is over the cap: ``size`` is the declared length, or the bytes read when
    the download was given up (at most ``cap + chunk``)."""

    def __init__(self, cap: int, size: int, declared: bool):
        self.cap, self.size, self.declared = cap, size, declared
        how = "declares" if declared else "sent more than"
        super().__init__(f"the file {how} {size:,} bytes, over the cap of {cap:,} bytes")


async def read_capped(response: aiohttp.ClientResponse, cap: int, chunk: int = CHUNK) -> bytes:
    """The whole body of ``response``, read to its end; :class:`TooLarge` past ``cap`` bytes."""
    declared = response.content_length
    if declared is not None and declared > cap:
        raise TooLarge(cap, declared, declared=True)
    body = bytearray()
    async for piece in response.content.iter_chunked(chunk):
        body += piece
        if len(body) > cap:
            raise TooLarge(cap, len(body), declared=False)
    return bytes(body)


async def fetch_capped(
    session: aiohttp.ClientSession,
    url: str,
    cap: int,
    headers: Mapping[str, str] | None = None,
    chunk: int = CHUNK,
    timeout: aiohttp.ClientTimeout = TIMEOUT,
) -> bytes:
    """GET ``url`` without following redirects and return its whole body (at most ``cap``
    bytes). Raises :class:`DownloadError` (:class:`TooLarge` over the cap) for any answer
    but 200, and lets ``aiohttp.ClientError`` / ``TimeoutError`` through."""
    # identity: the cap counts the bytes as they come (pictures are compressed already)
    h = {"Accept-Encoding": "identity", **(headers or {})}
    async with session.get(url, headers=h, allow_redirects=False, timeout=timeout) as r:
        if r.status != 200:
            where = f" to {r.headers.get('Location', '?').split('?')[0]}" if 300 <= r.status < 400 else ""
            message = f"HTTP {r.status}{where} (redirects are not followed)" if where else f"HTTP {r.status}"
            raise DownloadError(message, status=r.status)
        return await read_capped(r, cap, chunk)


async def with_first_picture(event, fetch: Callable[[object], Awaitable[bytes | None]]):
    """``event`` (a message) with its first picture downloaded: the one the core answers;
    the others are not fetched. ``fetch(attachment)`` returns the bytes, or None when the
    platform's rules say no (over the cap, a host the token must not go to). A picture that
    cannot be had for good is left out; a fault worth another try (5xx, 429, a network
    error) propagates, so the pipeline runs the event again."""
    for a in event.attachments:
        if a.data is not None:
            return dataclasses.replace(event, attachments=(a,))
        try:
            data = await fetch(a)
        except DownloadError as exc:
            if exc.transient:
                raise
            log.warning("picture %s not downloaded: %s", a.filename, exc)
            continue
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise DownloadUnavailable(f"download of {a.filename} failed: {type(exc).__name__}") from exc
        if data is not None:
            return dataclasses.replace(event, attachments=(dataclasses.replace(a, size=len(data), data=data),))
    return dataclasses.replace(event, attachments=())
