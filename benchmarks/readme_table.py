"""The README's benchmark table, generated from the benchmarks' JSON files.

    python benchmarks/readme_table.py .bench/results/*.json > table.md

Each JSON file is one ``benchmarks/<name>.py --json PATH`` run (schema in
``benchmarks/_common.py``). One row per case: medimg's median time and peak memory, then
every peer's time with its ``PEER/medimg`` ratio (above 1: medimg is faster), and the
variants and floors (tools that are not peers) without a ratio. A tool whose output did not
agree with medimg's is marked "(disagrees)", so a ratio is never shown for a different
result without saying so.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["table_rows", "render", "main"]


def _fmt_s(seconds: float) -> str:
    return f"{seconds:.3g} s" if seconds < 10 else f"{seconds:.1f} s"


def _fmt_tool(r: dict[str, Any], base: dict[str, Any] | None) -> str:
    text = f"{r['tool']} {_fmt_s(r['seconds'])}"
    if r.get("peer", True) and base is not None and base["seconds"] > 0:
        text += f" (**{r['seconds'] / base['seconds']:.2f}**)"
    if r.get("peak_mb") is not None:
        text += f", peak {r['peak_mb']:.0f} MB"
    if not r.get("agrees", True):
        text += " (disagrees)"
    return text


def table_rows(doc: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """``(benchmark, case, medimg, peers)`` cells for one benchmark JSON document."""
    cases: list[str] = []
    for r in doc["results"]:
        if r["case"] not in cases:
            cases.append(r["case"])
    rows = []
    for i, case in enumerate(cases):
        results = [r for r in doc["results"] if r["case"] == case]
        base = next((r for r in results if r["tool"] == "medimg"), None)
        mine = "-" if base is None else _fmt_s(base["seconds"]) + (
            f", peak {base['peak_mb']:.0f} MB" if base.get("peak_mb") is not None else ""
        )
        others = "; ".join(_fmt_tool(r, base) for r in results if r["tool"] != "medimg")
        name = f"`benchmarks/{doc['benchmark']}.py`" if i == 0 else ""
        rows.append((name, case, mine, others))
    return rows


def render(docs: Sequence[dict[str, Any]]) -> str:
    """A Markdown table of every document's rows, then the machine line of the first one."""
    out = [
        "| benchmark | case | medimg | others: time (**peer/medimg**, above 1: medimg faster) |",
        "|---|---|---|---|",
    ]
    for doc in docs:
        out += ["| " + " | ".join(cells) + " |" for cells in table_rows(doc)]
    if docs:
        m = docs[0]["machine"]
        v = m.get("versions", {})
        out.append("")
        out.append(
            f"Machine: {m.get('cpu')}, {m.get('cores')} cores, {m.get('device')}; "
            f"torch {v.get('torch')}, numpy {v.get('numpy')}; git {m.get('git')}."
        )
    return "\n".join(out) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("json", nargs="+", type=Path, help="benchmark JSON files")
    args = parser.parse_args(argv)
    docs = []
    for path in args.json:
        try:
            docs.append(json.loads(path.read_text()))
        except (OSError, ValueError) as exc:
            print(f"error: cannot read benchmark JSON '{path}': {exc}", file=sys.stderr)
            return 1
    sys.stdout.write(render(docs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
