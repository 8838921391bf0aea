"""The package's shape: no module over 600 lines, no function over 80, no import cycle.

``scripts/check_structure.py`` does the checking; this runs it on ``medimg/`` and checks the
checker itself on small synthetic packages.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "check_structure.py"

#: Problems allowed to stand: none (the splits of issue 6 landed). Keys as ``Problem.key``
#: spells them (module path; ``path::function``; ``cycle: modules...``), should one ever
#: need a documented exception.
KNOWN_OVERSIZE: frozenset[str] = frozenset()


def _load_checker():
    spec = importlib.util.spec_from_file_location("check_structure", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["check_structure"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


cs = _load_checker()


def test_medimg_has_no_new_structure_problems():
    problems = cs.check(REPO / "medimg", REPO)
    new = [str(p) for p in problems if p.key not in KNOWN_OVERSIZE]
    assert not new, "split these (no module over 600 lines, no function over 80, no import cycle):\n" + "\n".join(new)


# -- the checker on synthetic packages -------------------------------------------------------
def _package(root: Path, files: dict[str, str]) -> Path:
    """Write ``pkg/<name>`` files under ``root``; return the package folder."""
    for name, text in files.items():
        path = root / "pkg" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "pkg"


def _function(name: str, lines: int, indent: str = "") -> str:
    """A ``def`` spanning exactly ``lines`` lines."""
    body = [f"{indent}    x = {i}" for i in range(lines - 2)]
    return "\n".join([f"{indent}def {name}():", *body, f"{indent}    return x"]) + "\n"


def test_long_function_and_method_found_at_their_line(tmp_path):
    text = "import os\n\n" + _function("ok", 80) + "\n" + _function("too_long", 81) + "\nclass C:\n" + _function(
        "method", 95, indent="    "
    )
    pkg = _package(tmp_path, {"__init__.py": "", "a.py": text})
    problems = cs.check(pkg, tmp_path)
    assert [str(p) for p in problems] == [
        "pkg/a.py:84  function 'too_long' is 81 lines (max 80)",
        "pkg/a.py:167  function 'C.method' is 95 lines (max 80)",
    ]
    assert [p.key for p in problems] == ["pkg/a.py::too_long", "pkg/a.py::C.method"]


def test_nested_function_and_decorated_span(tmp_path):
    outer = "def outer():\n" + _function("inner", 82, indent="    ") + "    return inner\n"
    decorated = "@property\n" + _function("deco", 81)
    pkg = _package(tmp_path, {"__init__.py": "", "b.py": outer + "\n" + decorated})
    assert [p.key for p in cs.check(pkg, tmp_path)] == ["pkg/b.py::outer", "pkg/b.py::outer.inner", "pkg/b.py::deco"]


def test_long_module(tmp_path):
    pkg = _package(tmp_path, {"__init__.py": "", "big.py": "x = 1\n" * 601, "fits.py": "x = 1\n" * 600})
    assert [str(p) for p in cs.check(pkg, tmp_path)] == ["pkg/big.py:1  module is 601 lines (max 600)"]


def test_import_cycle_relative_and_absolute(tmp_path):
    pkg = _package(tmp_path, {
        "__init__.py": "from .a import f\n",  # a package importing its own submodule: no cycle
        "a.py": "from .b import g\n\ndef f():\n    return g()\n",
        "b.py": "import os\n\nimport pkg.c\n",
        "c.py": "from pkg import a\n",
        "d.py": "from . import a\n",  # imports into the cycle, is not part of it
    })
    problems = cs.check(pkg, tmp_path)
    assert [str(p) for p in problems] == ["pkg/a.py:1  import cycle: pkg.a -> pkg.b -> pkg.c -> pkg.a"]
    assert problems[0].key == "cycle: pkg.a, pkg.b, pkg.c"


def test_function_local_import_cycle_and_parent_relative(tmp_path):
    pkg = _package(tmp_path, {
        "__init__.py": "",
        "low/__init__.py": "from .core import run\n",
        "low/core.py": "def run():\n    from ..high.api import top  # hidden in a function\n    return top()\n",
        "high/__init__.py": "",
        "high/api.py": "from ..low import core\n\ndef top():\n    return 1\n",
    })
    problems = cs.check(pkg, tmp_path)
    assert [str(p) for p in problems] == ["pkg/high/api.py:1  import cycle: pkg.high.api -> pkg.low.core -> pkg.high.api"]


def test_import_by_name_counts_and_type_checking_does_not(tmp_path):
    by_name = 'import importlib\n\nWHERE = {"x": "pkg.b"}\n\ndef get(k):\n    return importlib.import_module(WHERE[k])\n'
    pkg = _package(tmp_path, {
        "__init__.py": (  # lazy exports (PEP 562): import nothing until used
            'import importlib\n\n_LAZY = {"D": "pkg.d"}\n\n'
            "def __getattr__(name):\n    return getattr(importlib.import_module(_LAZY[name]), name)\n"
        ),
        "a.py": by_name,
        "b.py": "def f():\n    import pkg.a\n",
        "c.py": "from typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n    from .d import D\n",
        "d.py": "from . import c\nimport pkg\n",
    })
    problems = cs.check(pkg, tmp_path)
    assert [str(p) for p in problems] == ["pkg/a.py:3  import cycle: pkg.a -> pkg.b -> pkg.a"]


def test_script_exit_status_and_lines(tmp_path):
    bad = _package(tmp_path / "bad", {"__init__.py": "", "m.py": _function("f", 90)})
    good = _package(tmp_path / "good", {"__init__.py": "", "m.py": _function("f", 10)})
    run = [sys.executable, str(SCRIPT), "--package", "pkg", "--root"]
    out = subprocess.run([*run, str(bad.parent)], capture_output=True, text=True, check=False)
    assert out.returncode == 1 and out.stdout.splitlines() == ["pkg/m.py:1  function 'f' is 90 lines (max 80)"]
    out = subprocess.run([*run, str(good.parent)], capture_output=True, text=True, check=False)
    assert out.returncode == 0 and "no import cycle" in out.stdout
    out = subprocess.run([*run, str(good.parent), "--max-function-lines", "9"], capture_output=True, text=True, check=False)
    assert out.returncode == 1 and "function 'f' is 10 lines (max 9)" in out.stdout


@pytest.mark.parametrize("limit", [79, 80])
def test_limits_are_inclusive(tmp_path, limit):
    pkg = _package(tmp_path, {"__init__.py": "", "m.py": _function("f", 80)})
    assert len(cs.check(pkg, tmp_path, max_function_lines=limit)) == (limit < 80)
