"""What a run of ``mlp score`` did, for the person who ran it and for an auditor.

A run's terminal output and ``--summary`` tell the same run, counted as its chunks come back in
the file's order, whichever process scored them. Only the first few rejections are kept: every
one is in the output's ``error`` column already.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from servekit.model import OUTSIDE_TRAINING, ServedModel
from servekit.scoring.cells import ERROR_COLUMN
from servekit.scoring.files import streamed
from servekit.scoring.fingerprints import file_fingerprints

#: Rejected rows named in the summary; the output's ``error`` column has every one.
SHOWN_REJECTIONS = 5


def counted(count: int, noun: str = "row") -> str:
    """``count`` and the noun, plural but for one: "1 row", "8,000 rows" ("1 rows rejected" was said)."""
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


@dataclass
class ScoreSummary:
    rows: int = 0
    scored: int = 0
    rejections: list[str] = field(default_factory=list)
    seconds: float = 0.0
    #: ``--prefix``: what the added columns' names begin with.
    prefix: str = ""
    #: Scored rows with an input outside the training range, and how many of them per field.
    outside: int = 0
    outside_by_field: Counter[str] = field(default_factory=Counter)
    #: Processes that scored chunks beside this one (0: all of them scored here).
    workers: int = 0
    #: The output's format (``OutputFormat.name``).
    output_format: str = ""
    #: How the file's request fields were read, where the run should say (``InputFile.notes``).
    notes: list[str] = field(default_factory=list)
    #: A streamed output's file, where it is a regular file holding the scores alone (``Tally``).
    streamed_file: dict[str, Any] | None = None

    @property
    def rejected(self) -> int:
        return self.rows - self.scored

    @property
    def error_column(self) -> str:
        return f"{self.prefix}{ERROR_COLUMN}"

    @property
    def outside_column(self) -> str:
        return f"{self.prefix}{OUTSIDE_TRAINING}"

    def render(self, model: ServedModel, output: Path) -> str:
        artifact = model.artifact
        rate = self.rows / self.seconds if self.seconds else 0.0
        by = f" by {self.workers} worker processes" if self.workers else ""
        lines = [
            f"{artifact.name} v{artifact.version}: scored {self.scored:,} of {counted(self.rows)} in "
            f"{self.seconds:.2f} s ({rate:,.0f} rows/s{by}) into {output}"
        ]
        if self.rejected:
            lines.append(
                f"{counted(self.rejected)} rejected, each with its problem in the {self.error_column} column:"
            )
            lines.extend(f"  {r}" for r in self.rejections[:SHOWN_REJECTIONS])
            if self.rejected > SHOWN_REJECTIONS:
                lines.append(f"  … and {self.rejected - SHOWN_REJECTIONS:,} more")
        if self.outside:
            fields = ", ".join(f"{name} {count:,}" for name, count in self.outside_by_field.most_common())
            lines.append(
                f"{counted(self.outside, 'scored row')} had an input outside the range of the version's "
                f"training rows ({fields}), where its trees answer as at the edge; the {self.outside_column} "
                "column lists them"
            )
        lines.extend(self.notes)
        return "\n".join(lines)

    def as_json(self, model: ServedModel, source: Path, output: Path) -> dict[str, Any]:
        """What a run did, for whoever reads its scores (``mlp score --summary``): the registry
        version that scored them (a run's id as well as the version number, which an alias does
        not fix), the rows, the first rejections, the inputs outside the training range, the time."""
        artifact = model.artifact
        return {
            "service": artifact.name,
            "model": {
                "name": artifact.name,
                "version": artifact.version,
                "run_id": artifact.run_id,
                "uri": artifact.uri,
            },
            "input": str(source),
            "input_files": file_fingerprints(source),
            "output": str(output),
            # Streamed: hashed as written where it went into a regular file from its start, and
            # null for a pipe, a device, or a file that holds other bytes too (>>, 2>&1).
            "output_file": self.streamed_file if streamed(output) else file_fingerprints(output)[0],
            "output_format": self.output_format,
            "rows": self.rows,
            "scored": self.scored,
            "rejected": self.rejected,
            "first_rejections": self.rejections[:SHOWN_REJECTIONS],
            "outside_training": {"rows": self.outside, "by_field": dict(self.outside_by_field.most_common())},
            "seconds": round(self.seconds, 3),
            "rows_per_second": round(self.rows / self.seconds) if self.seconds else None,
            "workers": self.workers,
            "notes": self.notes,
        }

    def count_outside(self, prediction: Mapping[str, Any]) -> None:
        found = prediction.get(OUTSIDE_TRAINING)
        if found:
            self.outside += 1
            self.outside_by_field.update({item["field"] for item in found})

    def add(self, chunk: ScoreSummary) -> None:
        """Count in the next chunk's summary (chunks are added in the file's order)."""
        self.rows += chunk.rows
        self.scored += chunk.scored
        self.rejections.extend(chunk.rejections[: max(0, SHOWN_REJECTIONS - len(self.rejections))])
        self.outside += chunk.outside
        self.outside_by_field.update(chunk.outside_by_field)
