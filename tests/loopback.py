"""Plain HTTP calls to the loopback services a test started, through one pooled client.

``httpx.get`` and ``httpx.post`` build a ``Client`` per call, and with it a TLS context that
loads the CA bundle: 35 ms of CPU a call on the 2-core machine, against 0.3 ms through a kept
client. The suite makes thousands of such calls (every probe of a starting service, every
request of a test), so they go through one client per test process, taken from any thread
(httpx's pool is thread-safe). Its pool keeps connections alive between calls; a connection to
a service that has stopped is seen as dropped and replaced. The arguments are httpx's."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

import httpx

#: httpx's default timeout for its module-level functions, so calls keep their meaning.
_CLIENT = httpx.Client(timeout=httpx.Timeout(5.0))


def get(url: str, **kwargs: Any) -> httpx.Response:
    return _CLIENT.get(url, **kwargs)


def post(url: str, **kwargs: Any) -> httpx.Response:
    return _CLIENT.post(url, **kwargs)


def request(method: str, url: str, **kwargs: Any) -> httpx.Response:
    return _CLIENT.request(method, url, **kwargs)


def stream(method: str, url: str, **kwargs: Any) -> AbstractContextManager[httpx.Response]:
    return _CLIENT.stream(method, url, **kwargs)


__all__ = ["get", "post", "request", "stream"]
