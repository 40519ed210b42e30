"""Time left in a `qvl index` run, from the rate measured so far.

The work of a file is counted in tokens (what a forward pass costs; items when the embedder does not
report tokens, as on Ray). Per kind of file, finished files give the tokens per file (images: a photo
at its budget always costs about the same) or per byte (PDFs, videos and texts, whose pages, clips and
chunks grow with their size); the rate is tokens per second since the first batch came back (the
first one pays for loading and, with int8 weights, compiling). Time left = the remaining files' tokens
at those ratios / that rate. Kinds with no finished file yet borrow the average of the others.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from .ingest import Found


def size_units(found: Found) -> float:
    """What the work of a file grows with: 1 for an image, its bytes for the rest."""
    return 1.0 if found.modality == "image" else float(max(found.size, 1))


@dataclass
class Eta:
    """Fed with the files to embed, the work as it comes back and the files as they close."""

    remaining: dict[str, list[float]] = field(default_factory=dict)  # modality -> [files, size units] not closed
    done: dict[str, list[float]] = field(default_factory=dict)  # modality -> [files, size units, tokens] closed
    work: float = 0.0
    first: tuple[float, float] | None = None  # (time, work) when the first batch came back
    last: float | None = None

    def plan(self, files: list[Found]) -> None:
        for f in files:
            left = self.remaining.setdefault(f.modality, [0.0, 0.0])
            left[0] += 1
            left[1] += size_units(f)

    def add(self, work: float, now: float | None = None) -> None:
        """`work` tokens (or items) came back."""
        now = time.perf_counter() if now is None else now
        if self.first is None:
            self.first = (now, self.work + work)
        self.work += work
        self.last = now

    def close(self, found: Found, work: float | None) -> None:
        """A file is finished (`work`: its tokens) or given up (None: it no longer counts)."""
        left = self.remaining.setdefault(found.modality, [0.0, 0.0])
        left[0] = max(0.0, left[0] - 1)
        left[1] = max(0.0, left[1] - size_units(found))
        if work:
            done = self.done.setdefault(found.modality, [0.0, 0.0, 0.0])
            done[0] += 1
            done[1] += size_units(found)
            done[2] += work

    def rate(self) -> float | None:
        """Work per second since the first batch came back; None until a later one has."""
        if self.first is None or self.last is None or self.last <= self.first[0] or self.work <= self.first[1]:
            return None
        return (self.work - self.first[1]) / (self.last - self.first[0])

    def seconds_left(self) -> float | None:
        rate = self.rate()
        if rate is None or not self.done:
            return None
        per_file = sum(d[2] for d in self.done.values()) / sum(d[0] for d in self.done.values())
        work = 0.0
        for modality, (files, units) in self.remaining.items():
            done = self.done.get(modality)
            work += units * done[2] / done[1] if done else files * per_file
        return work / rate


def format_seconds(seconds: float) -> str:
    """1:02:03, 4:05, 12 s or 2.5 s."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
