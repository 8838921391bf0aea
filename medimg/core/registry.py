"""A typed name -> component registry with did-you-mean lookups and plugin entry points."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Generic, TypeVar, overload

from .builder import build_component, check_spec, singular
from .errors import UnknownComponentError
from .spec import ComponentSpec

T = TypeVar("T")

__all__ = ["Registry"]


class Registry(Generic[T]):
    """Maps names to components (classes or factories).

    Third-party packages add components through the entry-point group
    ``medimg.<kind>`` (e.g. ``medimg.models``): each entry point's name is the component
    name and its object the component. They are loaded on the first lookup miss or
    listing, never at import time.

    Example:
        >>> MODELS = Registry("models")
        >>> @MODELS.register("tiny")
        ... class Tiny: ...
        >>> MODELS.get("tiny") is Tiny
        True
        >>> isinstance(MODELS.build({"name": "tiny"}), Tiny)
        True
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self._plugins_loaded = False

    @overload
    def register(self, name: str) -> Callable[[T], T]: ...
    @overload
    def register(self, name: str, obj: T) -> T: ...

    def register(self, name: str, obj: T | None = None):
        """Register ``obj`` under ``name``; usable as a decorator when ``obj`` is omitted."""
        key = name.lower()

        def _add(item: T) -> T:
            if key in self._items and self._items[key] is not item:
                raise ValueError(f"{self.kind} registry already has a component named '{key}'")
            self._items[key] = item
            return item

        return _add if obj is None else _add(obj)

    def _load_plugins(self) -> None:
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        from importlib.metadata import entry_points

        for ep in entry_points(group=f"medimg.{self.kind}"):
            if ep.name.lower() not in self._items:
                self._items[ep.name.lower()] = ep.load()

    def get(self, name: str) -> T:
        """Return the component named ``name`` (case-insensitive).

        Raises:
            UnknownComponentError: no such name; the message suggests close matches.
        """
        key = str(name).lower()
        if key not in self._items:
            self._load_plugins()
        if key not in self._items:
            close = difflib.get_close_matches(key, list(self._items), n=3, cutoff=0.6)
            hint = f"did you mean {' or '.join(repr(c) for c in close)}?" if close else None
            raise UnknownComponentError(
                f"unknown {self._singular()} "
                f"'{name}'; known: {', '.join(sorted(self._items)) or '(none)'}",
                hint=hint,
            )
        return self._items[key]

    def _singular(self) -> str:
        """``models`` -> ``model``, ``losses`` -> ``loss`` (for messages)."""
        return singular(self.kind)

    def build(
        self,
        spec: ComponentSpec | Mapping[str, Any],
        *leading: Any,
        key: str | None = None,
        random_ok: bool = True,
    ) -> T:
        """Build ``spec`` (``{"name": ..., **params}``), its parameters checked against the
        component's signature: :func:`medimg.core.builder.build_component`.

        Args:
            spec: the component spec.
            *leading: positional arguments the factory takes before the spec's params.
            key: the spec's place in a config (``"model"``, ``"preprocess[1]"``) for
                messages, or None for a spec written in Python.
            random_ok: False to refuse a random component (``random = True``).
        """
        return build_component(self, spec, *leading, key=key, random_ok=random_ok)

    def check(
        self, spec: ComponentSpec | Mapping[str, Any], leading: int = 0, **kwargs: Any
    ) -> list[tuple[tuple[Any, ...], str]]:
        """The problems of ``spec`` without building it: :func:`medimg.core.builder.check_spec`."""
        return check_spec(self, spec, leading, **kwargs)

    def suggest(self, name: str) -> list[str]:
        """Close matches of ``name`` among the registered names."""
        self._load_plugins()
        return difflib.get_close_matches(str(name).lower(), list(self._items), n=3, cutoff=0.6)

    def list(self) -> list[str]:
        """All registered names, sorted."""
        self._load_plugins()
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.list())

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self._items)} items)"
