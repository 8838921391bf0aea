"""The ``medimg`` command line: ``app`` (Typer) and ``main()`` (the console script).

One module per command group registers its commands on :data:`app` when imported here.
Importing this package imports neither torch nor any other heavy dependency; each
command imports what it needs when it runs.
"""

from . import (  # noqa: F401  (register commands)
    calibrate,
    card,
    compare,
    config,
    convert,
    deid,
    demo,
    evaluate,
    explain,
    export,
    folds,
    info,
    listing,
    pacs,
    plan,
    predict,
    serve,
    train,
)
from .app import app, main

__all__ = ["app", "main"]
