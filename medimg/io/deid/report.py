"""What a de-identification run did: one result per input file, and a one-screen summary."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["DeidFileResult", "DeidReport"]


@dataclass
class DeidFileResult:
    """What happened to one input file.

    Attributes:
        input: path relative to the input root (as given by the user, not an identifier
            medimg adds).
        status: ``"ok"`` or ``"failed"``.
        output: written file (None if failed).
        reason: why it failed (names tags, never values).
        notes: warnings for a file that was written (e.g. burned-in annotation).
    """

    input: str
    status: str
    output: Path | None = None
    reason: str | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class DeidReport:
    """Result of :func:`deidentify`: one :class:`DeidFileResult` per input file."""

    input_dir: Path
    output_dir: Path
    files: list[DeidFileResult] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    mapping_path: Path | None = None
    #: the edition of Table E.1-1 applied (``"Table E.1-1 2026c (dicom-anonymizer 2.1.0)"``)
    table: str = ""

    @property
    def n_ok(self) -> int:
        """Files written."""
        return sum(f.status == "ok" for f in self.files)

    @property
    def n_failed(self) -> int:
        """Files that could not be de-identified."""
        return sum(f.status == "failed" for f in self.files)

    @property
    def failed(self) -> list[DeidFileResult]:
        """The results of the failed files."""
        return [f for f in self.files if f.status == "failed"]

    def summary(self) -> str:
        """A one-screen summary: counts, options, each failure with its reason."""
        opts = ", ".join(k for k, v in self.options.items() if v is True) or "none"
        table = f", {self.table}" if self.table else ""
        lines = [
            (
                f"de-identified {self.n_ok} of {len(self.files)} files into {self.output_dir} "
                f"(PS3.15 E.1 Basic Profile{table}; options: {opts})"
            ),
        ]
        if self.mapping_path is not None:
            lines.append(f"mapping (contains identifiers, keep it safe): {self.mapping_path}")
        for f in self.failed:
            lines.append(f"  failed  {f.input}: {f.reason}")
        noted = [f for f in self.files if f.notes]
        for f in noted:
            lines.append(f"  warning {f.input}: {'; '.join(f.notes)}")
        return "\n".join(lines)
