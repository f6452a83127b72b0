"""HTTP calls to the venue (CLOB REST and Gamma) with the transport's failures in polyfeed's tree.

Every REST and Gamma call of :mod:`polyfeed.net` goes through :func:`call`, so that no aiohttp
exception leaves polyfeed: a call that gets no answer raises
:class:`polyfeed.errors.VenueUnreachableError` (refused, unresolved, TLS, cut off, timed out), an answer
of the wrong status or not JSON is a :class:`polyfeed.errors.VenueError` with its ``status``
(:func:`error_answer`, :func:`read_json`), and a URL aiohttp cannot use is an
:class:`polyfeed.errors.InvalidURLError`.
"""

from __future__ import annotations

import contextlib
import http
import os
import ssl
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from polyfeed.errors import FrameDecodeError, InvalidURLError, VenueError, VenueUnreachableError
from polyfeed.wire import decode_json

__all__ = ["call", "error_answer", "http_session", "read_json", "transport_error"]

Params = dict[str, str] | list[tuple[str, str]]
PolyfeedTransportError = VenueError | InvalidURLError


def http_session(
    timeout_s: float | None = None, ssl_context: ssl.SSLContext | None = None
) -> aiohttp.ClientSession:
    """An HTTP session for :func:`call`: each request gives up after ``timeout_s`` (``None`` or 0:
    aiohttp's default of 5 minutes); ``ssl_context`` for ``https://`` (a local exchange's certificate)."""
    connector = aiohttp.TCPConnector(ssl=ssl_context) if ssl_context is not None else None
    timeout = aiohttp.ClientTimeout(total=timeout_s) if timeout_s else None
    if timeout is None:
        return aiohttp.ClientSession(connector=connector)
    return aiohttp.ClientSession(connector=connector, timeout=timeout)


@contextlib.asynccontextmanager
async def call(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    params: Params | None = None,
    json: Any = None,
    headers: dict[str, str] | None = None,
) -> AsyncIterator[aiohttp.ClientResponse]:
    """``async with call(session, "GET", url) as response``: the response, whatever its status; a
    failure of the transport, while asking or while reading the answer in the block, is raised as
    :func:`transport_error` says.

    Raises:
        VenueUnreachableError: no answer (its ``reason`` says why).
        VenueError: another failure of the HTTP client.
        InvalidURLError: a URL aiohttp cannot use.
    """
    try:
        async with session.request(method, url, params=params, json=json, headers=headers) as response:
            yield response
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise transport_error(exc, url, session) from exc


def error_answer(response: aiohttp.ClientResponse, url: str) -> VenueError:
    """The error for an answer of a status the call cannot use (``answered HTTP 503 Service Unavailable``)."""
    try:
        phrase = http.HTTPStatus(response.status).phrase
    except ValueError:
        phrase = ""
    return VenueError(url, f"answered HTTP {response.status} {phrase}".rstrip(), response.status)


async def read_json(response: aiohttp.ClientResponse, url: str) -> Any:
    """The answer's body as JSON.

    Raises:
        VenueError: a body that is not JSON (a proxy's HTML page, say), with the answer's status.
    """
    body = await response.read()
    try:
        return decode_json(body)
    except FrameDecodeError:
        reason = f"answered HTTP {response.status} with a body that is not JSON"
        raise VenueError(url, reason, response.status) from None


def transport_error(
    exc: aiohttp.ClientError | TimeoutError, url: str, session: aiohttp.ClientSession | None = None
) -> PolyfeedTransportError:
    """The polyfeed error for an aiohttp failure while calling ``url``."""
    if isinstance(exc, aiohttp.InvalidURL):
        return InvalidURLError(f"not a URL aiohttp can call: {exc.url}")
    if isinstance(exc, aiohttp.ClientResponseError):  # raise_for_status, redirects
        reason = f"answered HTTP {exc.status} {exc.message}".rstrip()
        return VenueError(url, reason, exc.status or None)
    return VenueUnreachableError(url, _no_answer(exc, session))


def _no_answer(exc: BaseException, session: aiohttp.ClientSession | None) -> str:
    """Why no answer came, in words (``connection refused``, not ``[Errno 111] Connect call failed``)."""
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return f"the TLS certificate was refused ({exc.certificate_error})"
    if isinstance(exc, aiohttp.ClientConnectorError):
        error = exc.os_error
        # uvloop's and asyncio's strerror is "Connect call failed (...)"; the errno says why
        code = error.errno or 0  # negative for resolver errors (gaierror), whose strerror is right
        reason = os.strerror(code) if code > 0 else error.strerror or str(error)
        return (reason or type(error).__name__).lower()
    if isinstance(exc, TimeoutError):  # aiohttp's total timeout, or its connect or read timeouts
        total = session.timeout.total if session is not None else None
        return f"no answer within {total:g} s" if total else "no answer in time"
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError):
        return "the connection closed mid-answer"
    if isinstance(exc, OSError) and exc.errno and exc.errno > 0:
        return os.strerror(exc.errno).lower()
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
