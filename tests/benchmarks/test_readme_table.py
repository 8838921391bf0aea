"""The README benchmark table is generated from the benchmarks' JSON (issue 6 §10)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _module():
    spec = importlib.util.spec_from_file_location("readme_table", REPO / "benchmarks" / "readme_table.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


DOC = {
    "benchmark": "io_nifti",
    "machine": {"cpu": "test cpu", "cores": 2, "device": "cpu", "versions": {"torch": "x", "numpy": "y"}, "git": "abc"},
    "results": [
        {"case": "read gz", "tool": "medimg", "seconds": 0.5, "peak_mb": 100.0, "agrees": True, "peer": False},
        {"case": "read gz", "tool": "MONAI", "seconds": 2.0, "peak_mb": 400.0, "agrees": True, "peer": True},
        {"case": "read gz", "tool": "inflate floor", "seconds": 0.4, "peak_mb": None, "agrees": True, "peer": False},
        {"case": "write", "tool": "medimg", "seconds": 1.0, "peak_mb": None, "agrees": True, "peer": False},
        {"case": "write", "tool": "nibabel", "seconds": 0.5, "peak_mb": None, "agrees": False, "peer": True},
    ],
    "ratios": {},
}


def test_rows_carry_ratios_only_for_peers_and_flag_disagreement():
    rows = _module().table_rows(DOC)
    assert [r[1] for r in rows] == ["read gz", "write"]
    assert rows[0][0] == "`benchmarks/io_nifti.py`" and rows[1][0] == ""
    assert rows[0][2] == "0.5 s, peak 100 MB"
    assert "MONAI 2 s (**4.00**), peak 400 MB" in rows[0][3]
    assert "inflate floor 0.4 s" in rows[0][3] and "inflate floor 0.4 s (" not in rows[0][3]
    assert rows[1][3] == "nibabel 0.5 s (**0.50**) (disagrees)"


def test_cli_renders_markdown_from_files(tmp_path, capsys):
    path = tmp_path / "io_nifti.json"
    path.write_text(json.dumps(DOC))
    assert _module().main([str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("| benchmark | case | medimg |")
    assert "Machine: test cpu, 2 cores, cpu" in out


def test_cli_names_an_unreadable_file(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert _module().main([str(bad)]) == 1
    assert "bad.json" in capsys.readouterr().err
