"""The bad-data rules every script that reads a dataset applies: unusable examples are skipped and counted by cause,
and a run stops with one clear message once more than `--max_skipped_fraction` of what it read was unusable, or when
nothing it read was usable at all.

The 100-example floor of `SkipLog.check` only delays the verdict on the first few examples (one bad file among the
first three must not end a run); `SkipLog.check_final` applies the rule without it, at the end of the data or of the
run, so a small dataset cannot slip through.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

# How many example names a message or summary quotes.
MAX_EXAMPLES = 10


class TooManyBadExamplesError(RuntimeError):
    """More of the input was unusable than `--max_skipped_fraction` allows, or none of it was usable."""


@dataclass
class SkipLog:
    """Examples read (`seen`, held-out ones excluded), skipped ones by cause (`counts`), a few named examples of
    them (`examples`) and examples set aside for evaluation (`held_out`)."""

    counts: Counter = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)
    seen: int = 0
    held_out: int = 0

    def update(self, batch: dict[str, Any]) -> None:
        """Adds a collated batch's accounting (`num_examples`, `skipped`, `bad_examples`, `held_out`)."""
        self.seen += int(batch.get("num_examples", 0))
        self.held_out += int(batch.get("held_out", 0))
        self.counts.update(batch.get("skipped", {}))
        self.examples.extend(batch.get("bad_examples", [])[: max(0, MAX_EXAMPLES - len(self.examples))])

    @property
    def skipped(self) -> int:
        return sum(self.counts.values())

    @property
    def usable(self) -> int:
        return self.seen - self.skipped

    def verdict(self, max_fraction: float, min_seen: int = 100, what: str = "examples") -> str | None:
        """Why the data is unusable, or None. Past `min_seen` examples, more than `max_fraction` of them bad fails;
        with `min_seen=0` (the end of the data) so does having no usable example at all."""
        if min_seen <= 0 and self.usable <= 0:
            if self.seen == 0:
                return f"no {what} to read"
            return f"none of the {self.seen} {what} read was usable ({self.causes()}). Examples: {self.named()}"
        if self.seen >= max(min_seen, 1) and self.skipped > max_fraction * self.seen:
            return (
                f"{self.skipped} of {self.seen} {what} were unusable ({self.causes()}), more than "
                f"--max_skipped_fraction={max_fraction}. Examples: {self.named()}"
            )
        return None

    def check(self, max_fraction: float, min_seen: int = 100) -> None:
        """Raises `TooManyBadExamplesError` once more than `max_fraction` of at least `min_seen` examples were
        unusable."""
        message = self.verdict(max_fraction, min_seen)
        if message:
            raise TooManyBadExamplesError(message)

    def check_final(self, max_fraction: float, what: str = "examples") -> None:
        """The rule at the end of the data: no floor, and zero usable examples always fails."""
        message = self.verdict(max_fraction, min_seen=0, what=what)
        if message:
            raise TooManyBadExamplesError(message)

    def causes(self) -> str:
        return ", ".join(f"{reason}: {count}" for reason, count in self.counts.most_common()) or "none"

    def named(self) -> str:
        return "; ".join(self.examples[:MAX_EXAMPLES]) or "(none named)"

    def summary(self, what: str = "examples") -> str:
        """One line for the end of every run, however short: what was read, held out and skipped, and why."""
        line = f"{self.seen + self.held_out} {what} read, {self.skipped} skipped"
        if self.skipped:
            line += f" ({self.causes()})"
        if self.held_out:
            line += f", {self.held_out} held out for evaluation"
        if self.skipped:
            line += f"; skipped: {self.named()}"
        return line

    @classmethod
    def merged(cls, logs: list[SkipLog]) -> SkipLog:
        """The sum of several logs (one per rank)."""
        total = cls()
        for log in logs:
            total.seen += log.seen
            total.held_out += log.held_out
            total.counts.update(log.counts)
            total.examples.extend(log.examples[: max(0, MAX_EXAMPLES - len(total.examples))])
        return total

    def state_dict(self) -> dict[str, Any]:
        return {"counts": dict(self.counts), "examples": self.examples, "seen": self.seen, "held_out": self.held_out}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.counts, self.examples, self.seen = Counter(state["counts"]), list(state["examples"]), state["seen"]
        self.held_out = state.get("held_out", 0)  # absent from checkpoints written before held-out accounting


def counted(batches: Iterable[Any], log: SkipLog) -> Iterator[Any]:
    """`batches` unchanged, each collated batch's accounting added to `log` as it goes by: the skip counts of a loop
    that keeps none itself, for `SkipLog.check_final` after it."""
    for batch in batches:
        if isinstance(batch, Mapping) and "num_examples" in batch:
            log.update(batch)
        yield batch


def under_rules(
    run: Callable[[Iterable[Any]], Any], batches: Iterable[Any], max_fraction: float, what: str, where: str
) -> Any:
    """`run(batches)` (an evaluation loop, say) under the bad-data rules: if more than `max_fraction` of what it read
    was unusable, or nothing was, `TooManyBadExamplesError` ("`where`: none of the 12 `what` read was usable (...)")
    names the counts and causes, instead of a result over what was left or a bare error from inside the loop."""
    log = SkipLog()
    try:
        result = run(counted(batches, log))
    except (ValueError, TooManyBadExamplesError) as error:  # the loop found nothing, or too much bad: say why
        message = log.verdict(max_fraction, min_seen=0, what=what)
        if message:
            raise TooManyBadExamplesError(f"{where}: {message}") from None
        raise error
    message = log.verdict(max_fraction, min_seen=0, what=what)
    if message:
        raise TooManyBadExamplesError(f"{where}: {message}")
    return result
