"""What a replay found, version by version, and its rendering as the text ``mlp replay`` prints."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from servekit.replay.capture_objects import Captured

#: Differences listed per version (0: all); past it they are counted, so a log whose every answer
#: differs (another model behind the version) gives a readable report in bounded memory.
MAX_LISTED = 100


@dataclass
class VersionReport:
    """What replaying one version's captures found."""

    name: str
    version: str
    checked: int = 0
    #: The first ``listed`` differences, each naming its capture; the rest are only counted.
    problems: list[str] = field(default_factory=list)
    listed: int = MAX_LISTED
    unlisted: int = 0
    #: Captures whose answer differs (or whose run is not the version's now).
    differing: int = 0
    not_loaded: str | None = None
    #: Not loaded because the registry answered that it holds no such version (or no service of
    #: the name is installed): a finding about the log, as a difference is, which no retry mends.
    #: Any other cause (the registry unreachable) may pass.
    missing: bool = False
    #: Required answer fields the captures lack, each with how many lack it: answered since they
    #: were captured (``primary_fields`` are never among them: those lacking differ).
    answered_since: dict[str, int] = field(default_factory=dict)

    def differs(self, captured: Captured, problems: Sequence[str]) -> None:
        self.differing += 1
        for problem in problems:
            if self.listed and len(self.problems) >= self.listed:
                self.unlisted += 1
            else:
                self.problems.append(f"{captured.where}: {problem}")

    @property
    def reproduced(self) -> int:
        return self.checked - self.differing


def render(reports: Sequence[VersionReport]) -> tuple[str, bool]:
    """The report as text, and whether every captured answer was reproduced."""
    lines = []
    for r in reports:
        head = f"{r.name} v{r.version}"
        if r.not_loaded is not None:
            lines.append(f"{head}: {_answers(r.checked)} not checked: {r.not_loaded}")
            continue
        lines.extend(f"{head}: {problem}" for problem in r.problems)
        if r.unlisted:
            lines.append(f"{head}: {r.unlisted} more difference{'s' if r.unlisted > 1 else ''} not listed")
        tail = f", {r.differing} differ{'s' if r.differing == 1 else ''}" if r.differing else ""
        lines.append(f"{head}: {r.reproduced} of {_answers(r.checked)} reproduced{tail}")
        lines.extend(
            f"{head}: {count} captured answer{'s lack' if count > 1 else ' lacks'} {name}, answered since "
            "(not compared)"
            for name, count in sorted(r.answered_since.items())
        )
    ok = all(r.not_loaded is None and not r.differing for r in reports)
    return "\n".join(lines), ok


def failed_for_good(reports: Sequence[VersionReport]) -> bool:
    """Whether the replay found what running it again repeats: an answer that differs, or a
    version the registry does not hold. False when all it lacks is a version it could not load
    for a cause that may pass (the registry unreachable) or a fault no one foresaw."""
    return any(r.differing or r.missing for r in reports)


def _answers(count: int) -> str:
    return f"{count} captured answer{'' if count == 1 else 's'}"
