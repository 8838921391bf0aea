"""Where the PACS is and how to log in: :class:`PacsServer`, read from a small YAML file.

A server file (``medimg pacs --server pacs.yaml``)::

    url: http://127.0.0.1:8042/dicom-web   # DICOMweb root (QIDO-RS, WADO-RS, STOW-RS)
    username: medimg                        # HTTP basic authentication (optional)
    password: ...                           # or password_env: NAME (read from that variable)
    ae_title: MEDIMG                        # our AE title, for DIMSE (optional)
    called_ae_title: ORTHANC                # the PACS's AE title, for DIMSE (optional)
    host: 127.0.0.1                         # DIMSE host and port (optional)
    dicom_port: 4242
    retries: 3                              # attempts on a connection failure, with back-off
    timeout: 30                             # seconds per HTTP request

The password is never printed: ``repr(server)`` and :meth:`PacsServer.describe` leave it
out, and error messages name the URL, host, port and AE titles only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ...core.errors import ConfigError

__all__ = ["PacsServer", "load_server"]


@dataclass(frozen=True)
class PacsServer:
    """A PACS to talk to.

    Attributes:
        url: the DICOMweb root, ``http(s)://HOST:PORT/PATH``.
        username, password: HTTP basic authentication (``None``: none).
        ae_title: our AE title (DIMSE).
        called_ae_title: the PACS's AE title (DIMSE).
        host, dicom_port: the PACS's DIMSE address (``None``: DIMSE not configured).
        retries: attempts for a request that cannot connect (>= 1); the waits between them
            double from ``backoff_s``.
        backoff_s: the first wait between attempts, in seconds.
        timeout: seconds a request may take.
    """

    url: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ae_title: str = "MEDIMG"
    called_ae_title: str | None = None
    host: str | None = None
    dicom_port: int | None = None
    retries: int = 3
    backoff_s: float = 1.0
    timeout: float = 30.0

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(
                f"PACS url {self.url!r} is not an http(s) URL with a host",
                hint="give the DICOMweb root, e.g. http://127.0.0.1:8042/dicom-web",
            )
        if self.retries < 1:
            raise ConfigError(f"PACS retries must be at least 1, got {self.retries}")

    @property
    def http_host(self) -> str:
        return urlsplit(self.url).hostname or ""

    @property
    def http_port(self) -> int:
        parts = urlsplit(self.url)
        return parts.port or (443 if parts.scheme == "https" else 80)

    def describe(self) -> str:
        """``URL (user NAME)`` for messages: never the password."""
        return self.url + (f" (user {self.username})" if self.username else "")

    def with_options(self, **options: Any) -> "PacsServer":
        """A copy with the options that are not ``None`` replaced."""
        return replace(self, **{k: v for k, v in options.items() if v is not None})


_KEYS = {f.name for f in fields(PacsServer)} | {"password_env"}


def load_server(path: str | Path | None = None, **options: Any) -> PacsServer:
    """A :class:`PacsServer` from a YAML server file, with ``options`` (not ``None``) on top.

    Args:
        path: the server file (``None``: ``options`` alone, which must then give ``url``).
        **options: any :class:`PacsServer` field, or ``password_env`` (the name of an
            environment variable holding the password).

    Raises:
        ConfigError: the file cannot be read, has unknown keys or lacks ``url``.
    """
    import yaml

    data: dict[str, Any] = {}
    where = "the command line"
    if path is not None:
        where = f"server file '{path}'"
        try:
            loaded = yaml.safe_load(Path(path).read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read {where}: {' '.join(str(exc).split())}",
                              hint="give a YAML file with at least `url: http://HOST:PORT/dicom-web`") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{where} must be a mapping of keys (url, username, password...)")
        data.update(loaded)
    data.update({k: v for k, v in options.items() if v is not None})
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(_KEYS))}")
    env = data.pop("password_env", None)
    if env is not None:
        if env not in os.environ:
            raise ConfigError(f"{where}: password_env names {env!r}, which is not set in the environment")
        data["password"] = os.environ[env]
    if "url" not in data:
        raise ConfigError(f"{where} gives no PACS url",
                          hint="add `url: http://HOST:PORT/dicom-web`", cli_hint="give --url or --server FILE")
    try:
        return PacsServer(**data)
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from None
