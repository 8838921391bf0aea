"""A DICOMweb connection (``dicomweb-client``) with retries and one-line errors.

:func:`connect` returns a :class:`PacsClient`; :meth:`PacsClient.call` runs one
``dicomweb-client`` call, retrying a request that cannot connect (the waits doubling from
``server.backoff_s``), and turns what goes wrong into a :class:`~medimg.core.errors.PacsError`
that names the server (URL, host, port; never the password) and the study:

- cannot connect after every attempt: host and port, and that the server must run;
- 401 / 403: the user name, and to check the credentials;
- 404: the study or series asked for does not exist on that server.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from ...core.errors import MissingDependencyError, PacsError
from .server import PacsServer

__all__ = ["PacsClient", "connect"]

T = TypeVar("T")
#: HTTP answers that mean "try again later" (too many requests, unavailable, gateway timeout).
_BUSY = (429, 503, 504)


def _import_dicomweb():
    try:
        from dicomweb_client.api import DICOMwebClient
    except ImportError:
        raise MissingDependencyError(
            "talking to a PACS needs the 'dicomweb-client' package",
            hint="pip install 'medimg[pacs]'",
        ) from None
    return DICOMwebClient


class PacsClient:
    """A DICOMweb client of one :class:`PacsServer`; ``web`` is the ``dicomweb-client`` object."""

    def __init__(self, server: PacsServer) -> None:
        import requests

        DICOMwebClient = _import_dicomweb()
        self.server = server
        session = requests.Session()
        if server.username is not None:
            session.auth = (server.username, server.password or "")
        self._session = session
        self.web = DICOMwebClient(server.url, session=session)
        # one retry policy, ours (server.retries, back-off from server.backoff_s), not two nested
        self.web.set_http_retry_params(retry=False)
        # dicomweb-client takes no timeout; requests honours one per call on the session
        _set_timeout(session, server.timeout)

    def call(self, fn: Callable[..., T], *args: Any, what: str = "the request", **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` with retries on connection failures and PACS errors.

        Args:
            fn: a bound method of :attr:`web` (``search_for_studies``, ``iter_series``...).
            what: what is asked, for messages (``"study 1.2.3"``).
        """
        import requests

        server = self.server
        wait = server.backoff_s
        for attempt in range(1, server.retries + 1):
            try:
                return fn(*args, **kwargs)
            except (requests.ConnectionError, requests.Timeout) as exc:
                if attempt == server.retries:
                    raise PacsError(
                        f"cannot reach the PACS at {server.http_host}:{server.http_port} ({server.url}) "
                        f"for {what} after {server.retries} attempt(s): {_reason(exc)}",
                        hint="check that the server runs and the host and port are right "
                             "(url in the server file, or --url)",
                    ) from None
                time.sleep(wait)
                wait *= 2
            except requests.HTTPError as exc:
                status = exc.response.status_code if exc.response is not None else None
                if status in _BUSY and attempt < server.retries:  # busy: try again later
                    time.sleep(wait)
                    wait *= 2
                    continue
                error = self.http_error(exc, what)
                error.status = exc.response.status_code if exc.response is not None else None
                raise error from None
        raise AssertionError("unreachable")  # pragma: no cover

    def http_error(self, exc: Any, what: str) -> PacsError:
        """A :class:`PacsError` for an HTTP error answer to ``what``."""
        status = exc.response.status_code if exc.response is not None else None
        server = self.server
        if status in (401, 403):
            user = f"user {server.username!r}" if server.username else "no user name"
            return PacsError(
                f"the PACS at {server.url} refused the credentials ({user}, HTTP {status}) for {what}",
                hint="check username and password in the server file (or --username / --password-env)",
            )
        if status == 404:
            return PacsError(f"{what} does not exist on the PACS at {server.url} (HTTP 404)",
                             hint="check the UID: `medimg pacs query` lists the studies and series there")
        return PacsError(f"the PACS at {server.url} answered HTTP {status} for {what}: {_reason(exc)}")


def _reason(exc: BaseException) -> str:
    """The useful end of a requests error ("[Errno 111] Connection refused"), on one line."""
    import re

    text = " ".join(str(exc).split())
    found = re.search(r"\[Errno -?\d+\][^'\")]*", text)
    if found:
        return found.group(0).strip()
    return text[:200] or type(exc).__name__


def _set_timeout(session: Any, timeout: float) -> None:
    request = session.request

    def with_timeout(method: str, url: str, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", timeout)
        return request(method, url, **kwargs)

    session.request = with_timeout


def connect(server: PacsServer) -> PacsClient:
    """A :class:`PacsClient` for ``server`` (no request is made yet)."""
    return PacsClient(server)
