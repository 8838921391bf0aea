"""``medimg list [KIND]``: the registered components a config can name."""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer

from .app import _console, app


def _describe(obj: Any) -> str:
    described = getattr(obj, "description", None)
    if isinstance(described, str) and described.strip():
        return described.strip().splitlines()[0]
    doc = getattr(obj, "__doc__", None) or ""
    if not doc and not isinstance(obj, type):
        doc = type(obj).__doc__ or ""
    line = doc.strip().splitlines()[0] if doc.strip() else ""
    return line.rstrip(".")


@app.command("list")
def list_components(
    kind: Annotated[
        Optional[str],
        typer.Argument(help="models, transforms, losses, metrics, optimizers or schedulers (default: all)."),
    ] = None,
) -> None:
    """List the registered components that configs can name."""
    from rich.markup import escape

    from ..config import REGISTRY_KINDS, get_registry

    kinds = list(REGISTRY_KINDS) if kind is None else [kind.lower()]
    from rich.table import Table

    out = _console()
    for k in kinds:
        try:
            reg = get_registry(k)
        except ImportError as exc:
            if kind is not None:
                raise
            out.print(f"{k}: not available ({exc})", style="yellow", markup=False)
            continue
        table = Table(title=f"{k} ({len(reg.list())})", title_justify="left")
        table.add_column("name", style="bold cyan", no_wrap=True)
        table.add_column("description")
        for name in reg.list():
            table.add_row(name, escape(_describe(reg.get(name))))
        out.print(table)
