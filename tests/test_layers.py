"""The layers are enforced: import-linter's contracts (pyproject.toml) hold, cover every
subpackage, and errors import without torch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

try:
    import tomllib
except ImportError:  # Python 3.10: import-linter depends on tomli there
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]


def _contracts() -> dict[str, dict]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
    return {c["id"]: c for c in config["contracts"]}


def test_import_contracts_hold():
    """`lint-imports` on this checkout: layers import downward only (function-local imports
    counted), and no package has an import cycle between its modules."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}  # analyse this checkout, not an installed copy
    res = subprocess.run(
        [sys.executable, "-c", "from importlinter.cli import lint_imports_command; lint_imports_command()",
         "--no-cache"],
        cwd=REPO, capture_output=True, text=True, timeout=300, env=env,
    )
    assert "No module named 'importlinter'" not in res.stderr, "pip install -e '.[dev]' (import-linter)"
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    assert "2 kept, 0 broken" in res.stdout, res.stdout[-2000:]


def test_every_subpackage_has_a_layer():
    """A new subpackage cannot escape the contract by not being named in it."""
    named = {
        part.strip()
        for layer in _contracts()["layers"]["layers"]
        for part in layer.split("|")
    }
    found = {
        f"medimg.{p.stem if p.suffix == '.py' else p.name}"
        for p in (REPO / "medimg").iterdir()
        if (p.suffix == ".py" and p.stem not in ("__init__", "__main__"))
        or (p.is_dir() and (p / "__init__.py").is_file())
    }
    assert found == named, f"named in the layers contract but absent: {sorted(named - found)}; " \
                           f"absent from it: {sorted(found - named)}"


def test_errors_and_specs_import_without_torch():
    code = (
        "import sys\n"
        "import medimg.core.errors, medimg.core.spec, medimg.core.builder, medimg.core.registry\n"
        "from medimg.core import ConfigError, DataError\n"
        "import medimg.config\n"
        "print(','.join(m for m in ('torch', 'numpy', 'monai') if m in sys.modules))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "", f"imported: {res.stdout.strip()}"
