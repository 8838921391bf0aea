"""The ``medimg`` command line: ``app`` (Typer) and ``main()`` (the console script).

Importing this package imports neither torch nor any other heavy dependency; each
command imports what it needs when it runs.
"""

from .commands import app, main

__all__ = ["app", "main"]
