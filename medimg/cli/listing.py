"""``medimg list [KIND [NAME]]``: the registered components a config can name.

Plain text, one block per component: its name, the whole first sentence of its
documentation, and every parameter a config may set, with its type and default, read
from the component's signature (the leading arguments the trainer passes itself, such
as an optimizer's model parameters, are not config keys and are not shown). With NAME:
one component, with each parameter's own description and how a config writes it.
"""

from __future__ import annotations

import inspect
import re
import shutil
import textwrap
from dataclasses import dataclass
from typing import Annotated, Any, Optional

import typer

from ..core.errors import ConfigError, UnknownComponentError
from ..core.terms import type_text, yaml_value
from .app import _console, app

#: Where a config names a component of each kind.
_WHERE: dict[str, str] = {
    "models": "a config names one as model: {name: NAME, PARAMETER: VALUE, ...}",
    "transforms": "a config lists them in preprocess: and augment: as {name: NAME, PARAMETER: VALUE, ...}",
    "losses": "a config names one as loss: {name: NAME, PARAMETER: VALUE, ...}",
    "metrics": "a config lists their names in evaluation.metrics; `medimg evaluate --metrics NAME,...`",
    "optimizers": "a config names one as optimizer: {name: NAME, PARAMETER: VALUE, ...}",
    "schedulers": "a config names one as scheduler: {name: NAME, PARAMETER: VALUE, ...}",
}

#: The config key of a component of each kind (transforms: a list item, see below).
_SECTION_KEY = {"models": "model", "losses": "loss", "optimizers": "optimizer", "schedulers": "scheduler"}

_ABBREVIATIONS = ("e.g", "i.e", "et al", "etc", "cf", "vs", "approx", "incl", "resp")
_SECTION = re.compile(r"^(Args|Arguments|Params|Parameters|Returns|Raises|Example|Examples|Note|Notes|"
                      r"Attributes|Yields|Warning|Warnings|See Also)\s*:")


@dataclass(frozen=True)
class Parameter:
    """One config key of a component."""

    name: str
    type: str  # as a config writes it: int, list[float], str | null...; "" if unknown
    default: Any = inspect.Parameter.empty  # empty: required
    description: str = ""

    @property
    def required(self) -> bool:
        return self.default is inspect.Parameter.empty

    def line(self) -> str:
        """``name: type = default`` (``(required)`` without a default)."""
        text = f"{self.name}: {self.type}" if self.type else self.name
        return f"{text}  (required)" if self.required else f"{text} = {yaml_value(self.default)}"


# --------------------------------------------------------------------------- docs
def _clean(text: str) -> str:
    """reST markup to plain text: ``x`` -> x, :func:`~a.b` -> b, None -> null."""
    text = re.sub(r":\w+:`~?(?:[\w.]+\.)?([^`]+)`", r"\1", text)
    literals = {"None": "null", "True": "true", "False": "false"}
    text = re.sub(r"``([^`]+)``", lambda m: literals.get(m.group(1), m.group(1)), text)
    return re.sub(r"\s+", " ", text).strip()


def _paragraphs(doc: str) -> list[str]:
    return [p for p in re.split(r"\n\s*\n", inspect.cleandoc(doc)) if p.strip()]


def _sentence_end(text: str) -> int | None:
    """Index just past the first sentence of ``text`` (outside brackets, not after an
    abbreviation such as "e.g."), or None when the text has no sentence end."""
    depth = 0
    for i, ch in enumerate(text):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth = max(0, depth - 1)
        elif ch in ".!?" and depth == 0 and (i + 1 == len(text) or text[i + 1].isspace()):
            before = text[:i].lower()
            if ch == "." and before.endswith(_ABBREVIATIONS):
                continue
            return i + 1
    return None


def first_sentence(doc: str) -> str:
    """The whole first sentence of a docstring or description, as plain text.

    It may run over several lines, and, where the first paragraph ends in a colon, into
    the next paragraph (the list it announces).
    """
    text = ""
    for para in _paragraphs(doc or ""):
        if _SECTION.match(para):
            break
        text = f"{text} {_clean(para)}".strip()
        end = _sentence_end(text)
        if end is not None:
            return text[:end]
        if not text.endswith(":"):
            break
    text = text.rstrip(":;, ")
    if text and text[0].islower():
        text = text[0].upper() + text[1:]
    return f"{text}." if text and text[-1] not in ".!?" else text


def _arg_docs(doc: str) -> dict[str, str]:
    """``{parameter: description}`` from a Google-style ``Args:`` section."""
    out: dict[str, str] = {}
    lines = inspect.cleandoc(doc or "").splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() in ("Args:", "Arguments:"))
    except StopIteration:
        return out
    base = len(lines[start]) - len(lines[start].lstrip())
    entry_indent: int | None = None
    current: list[str] = []
    for line in lines[start + 1:]:
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        if indent <= base:
            break
        m = re.match(r"\s*(\*{0,2}[\w*]+(?:\s*,\s*\*{0,2}[\w*]+)*)\s*:\s(.*)$", line)
        if m and (entry_indent is None or indent == entry_indent):
            entry_indent = indent
            current = [n.strip().lstrip("*") for n in m.group(1).split(",")]
            for name in current:
                out[name] = m.group(2).strip()
        elif current:
            for name in current:
                out[name] = f"{out[name]} {line.strip()}"
    return {k: _clean(v) for k, v in out.items()}


def _doc(obj: Any) -> str:
    described = getattr(obj, "description", None)
    if isinstance(described, str) and described.strip():
        return described
    return inspect.getdoc(obj) or ""  # an instance without its own: its class's


# --------------------------------------------------------------------- components
def component_parameters(obj: Any, leading: int = 0) -> tuple[list[Parameter], bool]:
    """The config keys of a registered component, and whether it takes any other key.

    Read from the signature (a class: its constructor); the first ``leading`` positional
    parameters (what the caller passes itself, e.g. an optimizer's model parameters),
    positional-only and ``*args`` parameters are not config keys. A component with a
    ``defaults`` mapping (the metrics) has exactly those parameters.
    """
    docs = _arg_docs(inspect.getdoc(obj) or "")
    if inspect.isclass(obj):
        docs = {**_arg_docs(inspect.getdoc(obj.__init__) or ""), **docs}
    defaults = getattr(obj, "defaults", None)
    if not inspect.isclass(obj) and not inspect.isfunction(obj) and isinstance(defaults, dict):
        return [Parameter(k, type(v).__name__ if v is not None else "", v, docs.get(k, ""))
                for k, v in defaults.items()], False
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):  # no signature to read
        return [], True
    out: list[Parameter] = []
    open_ended = False
    skipped = 0
    for p in sig.parameters.values():
        if p.kind is p.VAR_KEYWORD:
            open_ended = True
        elif p.kind is p.POSITIONAL_OR_KEYWORD and skipped < leading:
            skipped += 1
        elif p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            out.append(Parameter(p.name, type_text(p.annotation), p.default, docs.get(p.name, "")))
    return out, open_ended


def _notes(kind: str, obj: Any) -> str:
    """Short facts shown after the name: augment-only transforms, metric units."""
    notes = []
    if kind == "transforms" and getattr(obj, "random", False):
        notes.append("random: augment only")
    unit = getattr(obj, "unit", None)
    if kind == "metrics" and isinstance(unit, str) and unit:
        notes.append(unit)
    return f" ({', '.join(notes)})" if notes else ""


def _wrap(text: str, indent: str, width: int) -> list[str]:
    return textwrap.wrap(text, width=max(40, width), initial_indent=indent, subsequent_indent=indent + "  ",
                         break_long_words=False, break_on_hyphens=False) or [indent.rstrip()]


def format_component(kind: str, name: str, obj: Any, leading: int, *, width: int, detail: bool = False) -> str:
    """One component as plain text: name, first sentence, parameters."""
    params, open_ended = component_parameters(obj, leading)
    lines = _wrap(f"{name}{_notes(kind, obj)}: {first_sentence(_doc(obj)) or '(no description)'}", "", width)
    if detail:
        lines.append("parameters:" if params or open_ended else "parameters: none")
    if not params and not open_ended and not detail:
        lines.append("    (no parameters)")
    for p in params:
        lines += _wrap(p.line(), "    ", width)
        if detail and p.description:
            lines += _wrap(p.description, "        ", width)
    if open_ended:
        lines += _wrap("(any other key is passed on as it is)", "    ", width)
    if detail:
        lines += ["", "in a config:"]
        if kind == "metrics":
            lines += [f"  evaluation: {{metrics: [{name}]}}", f"on the command line: medimg evaluate --metrics {name}"]
        else:
            shown = [f"{p.name}: <{p.type or 'value'}>" for p in params if p.required]
            spec = "{" + ", ".join([f"name: {name}", *shown]) + "}"
            if any(not p.required for p in params):
                spec += "   # + any parameter above, to change its default"
            if kind == "transforms":
                section = "augment" if getattr(obj, "random", False) else "preprocess"
                lines += [f"  {section}:", f"    - {spec}"]
            else:
                lines.append(f"  {_SECTION_KEY.get(kind, kind)}: {spec}")
    return "\n".join(lines)


def _registry(kind: str) -> Any:
    from ..config import get_registry

    return get_registry(kind)


def _leading(kind: str) -> int:
    from ..config import LEADING_ARGS

    return LEADING_ARGS.get(kind, 0)


def _one_component(kind: str, name: str, width: int) -> str:
    registry = _registry(kind)
    try:
        obj = registry.get(name)
    except UnknownComponentError as exc:  # a bad NAME is a usage error (exit 2)
        raise ConfigError(exc.message, hint=exc.hint or f"see `medimg list {kind}`") from None
    return format_component(kind, name.lower(), obj, _leading(kind), width=width, detail=True)


@app.command("list")
def list_components(
    kind: Annotated[
        Optional[str],
        typer.Argument(
            metavar="KIND",
            help="models, transforms, losses, metrics, optimizers or schedulers (default: all).",
        ),
    ] = None,
    name: Annotated[
        Optional[str],
        typer.Argument(metavar="NAME", help="One component of KIND: also each parameter's description."),
    ] = None,
) -> None:
    """List the components a config can name, with their parameters, types and defaults."""
    from ..config import REGISTRY_KINDS

    width = min(shutil.get_terminal_size((100, 24)).columns, 120)
    out = _console()
    if kind is not None and name is not None:
        out.print(_one_component(kind.lower(), name, width), markup=False)
        return
    kinds = list(REGISTRY_KINDS) if kind is None else [kind.lower()]
    for i, k in enumerate(kinds):
        try:
            registry = _registry(k)
        except ImportError as exc:
            if kind is not None:
                raise
            out.print(f"{k}: not available ({exc})", markup=False)
            continue
        names = registry.list()
        head = (f"{k} ({len(names)}): {_WHERE.get(k, k)}\n"
                f"(each parameter's description: medimg list {k} NAME)")
        blocks = [format_component(k, n, registry.get(n), _leading(k), width=width) for n in names]
        out.print(("\n" if i else "") + "\n".join([head, "", *blocks]), markup=False)
