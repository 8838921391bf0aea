"""The medimg exception hierarchy.

Every error medimg raises on purpose is a :class:`MedimgError`. Each class also subclasses
the nearest builtin, so ``except ValueError`` / ``except OSError`` keep working::

    MedimgError (Exception)
    ├── ConfigError (ValueError)            a config file, key or value is wrong
    ├── UnknownComponentError (LookupError) a registry has no component of that name
    ├── ImageReadError (OSError)            a file or folder cannot be read as an image
    │   └── DicomError                      DICOM-specific read problem
    │       └── DicomSeriesError            a series cannot be assembled into a correct volume
    ├── ImageWriteError (OSError)           an image cannot be written
    ├── GeometryError (ValueError)          shapes/affines disagree (image vs label, ...)
    ├── DataError (ValueError)              a manifest, case or dataset is wrong
    ├── TransformError (ValueError)         a transform cannot be applied or inverted
    ├── CheckpointError (ValueError)        a checkpoint is missing, corrupt or incompatible
    ├── InsufficientMemoryError (MemoryError) a case would not fit the memory available
    ├── PacsError (OSError)                 a PACS cannot be reached, refuses us or lacks a study
    └── MissingDependencyError (ImportError) an optional extra is not installed

Messages follow one pattern: what went wrong, where (file, case, key), what was expected,
what was found, and how to fix it. The optional ``hint`` is appended as "hint: ...".

A hint that names a Python call or parameter (``series_uid=KEY``, ``gantry_tilt='shear'``)
means nothing to someone at the command line. Such errors also carry ``cli_hint``: the same
advice in command-line terms (options such as ``--series KEY``, commands such as
``medimg convert``), which the CLI prints instead of ``hint``. A front end that knows
better (the option of its own command) rewords it with :meth:`MedimgError.reworded`.
"""

from __future__ import annotations

__all__ = [
    "MedimgError",
    "ConfigError",
    "UnknownComponentError",
    "ImageReadError",
    "ImageWriteError",
    "DicomError",
    "DicomSeriesError",
    "GeometryError",
    "DataError",
    "TransformError",
    "CheckpointError",
    "MissingDependencyError",
    "TrainingError",
    "InsufficientMemoryError",
    "PacsError",
]


class MedimgError(Exception):
    """Base class of all errors raised by medimg.

    Args:
        message: one or more sentences: what, where, expected, found.
        hint: optional advice on how to fix it, shown on its own line, in the terms of
            the Python API.
        cli_hint: the same advice in command-line terms (options, commands), where it
            differs from ``hint``; the CLI shows it instead of ``hint``.
    """

    def __init__(self, message: str, *, hint: str | None = None, cli_hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        self.cli_hint = cli_hint
        super().__init__(message if hint is None else f"{message}\n  hint: {hint}")

    def hint_for(self, interface: str = "python") -> str | None:
        """The hint in the terms of ``interface``: ``"python"`` or ``"cli"``.

        ``"cli"`` gives ``cli_hint`` where there is one, else ``hint``.
        """
        if interface == "cli" and self.cli_hint:
            return self.cli_hint
        return self.hint

    def reworded(self, cli_hint: str) -> "MedimgError":
        """This error with ``cli_hint`` replaced (same class, message and data); for
        front ends that word the fix in their own terms. Returns ``self``."""
        self.cli_hint = cli_hint
        return self


class ConfigError(MedimgError, ValueError):
    """A configuration file, key or value is invalid.

    ``problems`` holds every problem found (so all can be reported at once), each a
    ``(location, key, message)`` tuple where location is ``file:line:col`` or ``""``.
    """

    def __init__(
        self,
        message: str,
        *,
        problems: list[tuple[str, str, str]] | None = None,
        hint: str | None = None,
        cli_hint: str | None = None,
    ) -> None:
        self.problems = list(problems or [])
        super().__init__(message, hint=hint, cli_hint=cli_hint)


class UnknownComponentError(MedimgError, LookupError):
    """A registry lookup failed; the message lists close matches and all known names."""

    def __str__(self) -> str:  # LookupError/KeyError would repr() the message
        return self.args[0] if self.args else ""


class ImageReadError(MedimgError, OSError):
    """A file or folder could not be read as an image (missing, truncated, wrong format)."""


class DicomError(ImageReadError):
    """A DICOM file or folder could not be read."""


class DicomSeriesError(DicomError):
    """A DICOM series cannot be assembled into a geometrically correct volume.

    Attributes:
        series_uid: SeriesInstanceUID of the series concerned (or None).
        files: the files concerned (may be a subset of the series).
        choices: where a folder holds several series and none was chosen, their keys
            (each a valid ``series_uid``); empty otherwise. Front ends use it to word
            their own way of choosing (e.g. the CLI's ``--series``).
    """

    def __init__(
        self,
        message: str,
        *,
        series_uid: str | None = None,
        files: list[str] | None = None,
        choices: list[str] | None = None,
        hint: str | None = None,
        cli_hint: str | None = None,
    ) -> None:
        self.series_uid = series_uid
        self.files = list(files or [])
        self.choices = list(choices or [])
        super().__init__(message, hint=hint, cli_hint=cli_hint)


class ImageWriteError(MedimgError, OSError):
    """An image could not be written."""


class GeometryError(MedimgError, ValueError):
    """Spatial metadata disagree: shapes, spacings or affines that must match do not."""


class DataError(MedimgError, ValueError):
    """A manifest, a case or a dataset is invalid."""


class TransformError(MedimgError, ValueError):
    """A transform cannot be applied to, or inverted on, the given input."""


class CheckpointError(MedimgError, ValueError):
    """A checkpoint is missing, unreadable or incompatible."""


class TrainingError(MedimgError, FloatingPointError):
    """Training cannot go on: a NaN or infinite loss (the message names the epoch, the step
    and the batch's cases)."""


class InsufficientMemoryError(MedimgError, MemoryError):
    """A case would not fit the memory available (estimated before it runs); the message
    gives the estimate, the memory available and the settings that would make it fit."""


class PacsError(MedimgError, OSError):
    """A PACS cannot be reached (host, port), refuses the credentials or the association, or
    lacks the study or series asked for; the message names the server and the study."""


class MissingDependencyError(MedimgError, ImportError):
    """An optional dependency is missing; the hint gives the pip install line."""


# Exceptions whose class name carries their meaning (an EOFError's message may be empty or
# say only "read 0 bytes"; a KeyError's is just the key): that meaning in words.
_MEANING: tuple[tuple[type[BaseException], str], ...] = (
    (EOFError, "the data ends early (truncated)"),
    (KeyError, "missing entry"),
    (MemoryError, "out of memory"),
    (RecursionError, "nested too deeply"),
    (UnicodeError, "text that is not valid in its encoding"),
    (ZeroDivisionError, "division by zero"),
    (NotImplementedError, "not supported"),
    (FileNotFoundError, "file not found"),
    (PermissionError, "permission denied"),
    (TimeoutError, "timed out"),
)


def exception_reason(exc: BaseException) -> str:
    """Why ``exc`` happened, on one line, for a person: its own message without the Python
    class name (``"unpack requires a buffer of 4 bytes"``, not ``"error: unpack ..."``).

    Where the class carries the meaning (``EOFError``, ``KeyError``) or the message is empty,
    that meaning is said in words: ``"the data ends early (truncated): ..."``,
    ``"missing entry 'PixelData'"``. A :class:`MedimgError` gives its message (no hint).
    """
    text = exc.message if isinstance(exc, MedimgError) else str(exc)
    text = " ".join(text.split())  # one line
    meaning = next((words for cls, words in _MEANING if isinstance(exc, cls)), None)
    if meaning is None:
        return text or "failed without saying why"
    if not text:
        return meaning
    if isinstance(exc, (EOFError, KeyError)) or meaning.split()[0] not in text.lower():
        return f"{meaning} {text}" if isinstance(exc, KeyError) else f"{meaning}: {text}"
    return text


def require(module: str, extra: str, purpose: str):
    """Import an optional dependency or raise :class:`MissingDependencyError`.

    Args:
        module: importable module name, e.g. ``"highdicom"``.
        extra: the medimg extra that installs it, e.g. ``"dicom-seg"``.
        purpose: what it is needed for, e.g. ``"writing DICOM SEG"``.
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{purpose} needs the optional package '{module}', which is not installed",
            hint=f"pip install 'medimg[{extra}]'",
        ) from exc
