"""HTTP calls to the venue: aiohttp's failures become polyfeed's errors, with the URL and the status."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
from aiohttp import web

from polyfeed.errors import InvalidURLError, VenueError, VenueUnreachableError
from polyfeed.net.transport import call, error_answer, http_session, read_json
from tests.waiting import BOUND_S

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@contextlib.asynccontextmanager
async def serving(path: str, handler: Handler) -> AsyncIterator[str]:
    """A raw HTTP server on loopback answering ``GET path``; yields its base URL."""
    app = web.Application()
    app.router.add_get(path, handler)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


def run(main: Callable[[], Awaitable[None]]) -> None:
    async def bounded() -> None:
        await asyncio.wait_for(main(), BOUND_S)

    asyncio.run(bounded())


def test_any_status_comes_back_for_the_caller_to_judge() -> None:
    async def teapot(request: web.Request) -> web.Response:
        return web.json_response({"brewing": False}, status=418)

    async def main() -> None:
        async with serving("/tea", teapot) as base, http_session() as http:
            url = base + "/tea"
            async with call(http, "GET", url) as response:
                assert response.status == 418
                assert await read_json(response, url) == {"brewing": False}
                error = error_answer(response, url)
        assert (error.url, error.status, str(error)) == (url, 418, f"{url}: answered HTTP 418 I'm a Teapot")

    run(main)


def test_a_refused_connection_is_unreachable_with_the_url_and_the_cause(closed_port: int) -> None:
    async def main() -> None:
        url = f"http://127.0.0.1:{closed_port}/markets"
        async with http_session() as http:
            with pytest.raises(VenueUnreachableError) as caught:
                async with call(http, "GET", url, params={"slug": "x"}):
                    pass
        assert (caught.value.url, caught.value.status) == (url, None)
        assert str(caught.value) == f"{url}: connection refused"
        assert isinstance(caught.value.__cause__, aiohttp.ClientConnectorError)

    run(main)


def test_no_answer_within_the_sessions_timeout_is_unreachable() -> None:
    answer = asyncio.Event()

    async def never(request: web.Request) -> web.Response:
        await answer.wait()  # released when the test ends
        return web.Response()

    async def main() -> None:
        async with serving("/book", never) as base, http_session(0.2) as http:
            try:
                with pytest.raises(VenueUnreachableError) as caught:
                    async with call(http, "GET", base + "/book"):
                        pass
            finally:
                answer.set()
        assert (caught.value.url, caught.value.reason) == (base + "/book", "no answer within 0.2 s")

    run(main)


def test_a_connection_closed_mid_answer_is_unreachable() -> None:
    async def cut(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": "1000"})
        await response.prepare(request)
        await response.write(b'{"partial": ')
        assert request.transport is not None
        request.transport.close()
        return response

    async def main() -> None:
        async with serving("/books", cut) as base, http_session() as http:
            with pytest.raises(VenueUnreachableError, match="closed mid-answer") as caught:
                async with call(http, "GET", base + "/books") as response:
                    await response.read()
        assert caught.value.status is None

    run(main)


def test_a_url_aiohttp_cannot_call_is_an_invalid_url_error() -> None:
    async def main() -> None:
        async with http_session() as http:
            with pytest.raises(InvalidURLError, match="not a URL"):
                async with call(http, "GET", "http://[::1/markets"):
                    pass

    run(main)


def test_a_body_that_is_not_json_keeps_its_status() -> None:
    async def page(request: web.Request) -> web.Response:
        return web.Response(text="<html>gateway</html>", status=200, content_type="text/html")

    async def main() -> None:
        async with serving("/markets", page) as base, http_session() as http:
            url = base + "/markets"
            async with call(http, "GET", url) as response:
                with pytest.raises(VenueError, match="not JSON") as caught:
                    await read_json(response, url)
        assert (caught.value.url, caught.value.status) == (url, 200)

    run(main)
