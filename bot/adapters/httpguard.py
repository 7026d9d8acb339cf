"""Defensive reading of HTTP request bodies, shared by the web playground and the Slack edge.

Every refusal is a 4xx with a one-line reason (``{"error": "..."}``), never a traceback:
:class:`Refused` carries the status and the line; :func:`refusal` turns it into a response.
Bodies are read from the stream up to a cap (``Content-Length`` is checked first, and a
chunked body is cut at cap + 1 bytes), independent of the app-wide ``client_max_size``.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web


class Refused(Exception):
    """A request the bot will not process: ``status`` (4xx) and a one-line ``reason``."""

    def __init__(self, status: int, reason: str, headers: dict[str, str] | None = None):
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = headers or {}


def refusal(exc: Refused) -> web.Response:
    return web.json_response({"error": exc.reason}, status=exc.status, headers=exc.headers)


def size_text(n: int) -> str:
    return f"{n // 1024} KB" if n < 1024 * 1024 else f"{n / (1024 * 1024):g} MB"


def check_declared_length(request: web.Request, cap: int) -> None:
    """413 at once when ``Content-Length`` already says the body is over ``cap``."""
    declared = request.content_length
    if declared is not None and declared > cap:
        raise Refused(413, f"request body is {declared} bytes; the limit here is {size_text(cap)}")


async def read_capped(request: web.Request, cap: int) -> bytes:
    """The body, at most ``cap`` bytes, or :class:`Refused` (413) without reading further."""
    check_declared_length(request, cap)
    chunks: list[bytes] = []
    got = 0
    while True:
        chunk = await request.content.read(min(64 * 1024, cap + 1 - got))
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
        if got > cap:
            raise Refused(413, f"request body is over the limit here ({size_text(cap)})")
    return b"".join(chunks)


def decode_utf8(data: bytes, what: str = "request body") -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Refused(400, f"{what} is not valid UTF-8 (byte {exc.start})") from None


def parse_json(text: str, what: str = "request body") -> Any:
    """``json.loads`` whose every failure is a 400: malformed, or nested too deep for the parser."""
    try:
        return json.loads(text)
    except RecursionError:
        raise Refused(400, f"{what} is JSON nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise Refused(400, f"{what} is not valid JSON ({exc.msg} at character {exc.pos})") from None
    except ValueError:
        raise Refused(400, f"{what} is not valid JSON") from None


__all__ = ["Refused", "check_declared_length", "decode_utf8", "parse_json", "read_capped", "refusal", "size_text"]
