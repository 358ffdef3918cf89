"""The training loop's supply of batches: endless passes over a streamed loader, in lockstep across ranks, with the
bad-data rules of `quality.py` applied to what all ranks read together.

`TrainingFeed.next()` returns only when every rank holds a batch with at least one usable example, so that every
forward is a real one (the quantizer all-reduces inside it) and no rank trains on nothing. A rank whose batch is
usable keeps it while the others read on: nothing good is dropped. Each read all-reduces one small vector of counts,
so all ranks see the same totals and stop together, with one message, when:

* more than `max_skipped_fraction` of the examples read so far were unusable (checked once `min_seen` were read,
  and at every end of the data whatever the count);
* a whole pass over a rank's data held no usable example (which includes a dataset with none at all).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch

from .quality import SkipLog, TooManyBadExamplesError


def endless_batches(
    loader: torch.utils.data.DataLoader, start_epoch: int = 0, skip_batches: int = 0
) -> Iterator[tuple[int, dict | None]]:
    """`(epoch, batch)` pairs of `loader`, epoch after epoch, forever, with `set_epoch` before each epoch (it
    reshuffles the shard order and the buffer), and `(epoch, None)` at the end of each epoch. Training runs by
    steps, so ranks whose shards hold different numbers of examples never wait on each other at an epoch boundary.

    `skip_batches` drops the first batches of `start_epoch`: resuming a run replays the same shuffled order up to
    where its checkpoint was taken, which is what makes a resumed run equal an uninterrupted one."""
    epoch = start_epoch
    while True:
        if hasattr(loader.dataset, "set_epoch"):
            loader.dataset.set_epoch(epoch)
        for index, batch in enumerate(loader):
            if epoch == start_epoch and index < skip_batches:
                continue
            yield epoch, batch
        yield epoch, None
        epoch += 1


class TrainingFeed:
    """Usable batches of `loader` for the training loop, with this rank's stream position for checkpoints.

    Args:
        loader: this rank's DataLoader of collated batches (with the accounting keys of `collate.py`).
        size: the number of usable examples in a batch.
        max_skipped_fraction: `--max_skipped_fraction`.
        world_size, reduce, gather: the number of ranks, a sum over ranks of a 1-D tensor, and a gather of a Python
            object into the list of every rank's (identities on one process).
        log: where the first end of the data is reported (how much was read, held out and skipped).
        min_seen: examples read before the fraction is checked in the middle of the data.
    """

    def __init__(
        self,
        loader: torch.utils.data.DataLoader,
        *,
        size: Callable[[dict[str, Any]], int],
        max_skipped_fraction: float,
        world_size: int = 1,
        reduce: Callable[[torch.Tensor], torch.Tensor] | None = None,
        gather: Callable[[Any], list[Any]] | None = None,
        log: Callable[[str], None] | None = None,
        min_seen: int = 100,
    ) -> None:
        self.loader, self.size, self.max_skipped_fraction = loader, size, max_skipped_fraction
        self.world_size, self.min_seen = world_size, min_seen
        self.reduce = reduce or (lambda tensor: tensor)
        self.gather = gather or (lambda obj: [obj])
        self.log = log
        self.epoch = self.batches_in_epoch = self.usable_in_epoch = 0
        self.skips = SkipLog()  # this rank's, with causes and names
        self.totals = [0, 0, 0]  # every rank's: examples read, skipped, held out
        self._batches: Iterator | None = None
        self._pending: dict[str, Any] | None = None

    def next(self) -> dict[str, Any]:
        """The next batch with at least one usable example, at the same call on every rank."""
        while True:
            read, pass_ended, pass_without_usable = [0, 0, 0], 0, 0
            if self._pending is None:
                if self._batches is None:
                    self._batches = endless_batches(self.loader, self.epoch, self.batches_in_epoch)
                epoch, batch = next(self._batches)
                if batch is None:  # this rank has read all its data once more
                    pass_ended, pass_without_usable = 1, int(self.usable_in_epoch == 0)
                    self.epoch, self.batches_in_epoch, self.usable_in_epoch = epoch + 1, 0, 0
                else:
                    self.batches_in_epoch += 1
                    self.skips.update(batch)
                    usable = self.size(batch)
                    self.usable_in_epoch += usable
                    skipped = sum(batch.get("skipped", {}).values())
                    read = [int(batch.get("num_examples", 0)), skipped, int(batch.get("held_out", 0))]
                    self._pending = batch if usable > 0 else None
            flags = torch.tensor([*read, self._pending is not None, pass_ended, pass_without_usable], dtype=torch.long)
            *read, holding, pass_ended, pass_without_usable = self.reduce(flags).tolist()
            self.totals = [total + new for total, new in zip(self.totals, read)]
            if pass_ended and self.epoch == 1 and self.log:
                seen, skipped, held_out = self.totals
                self.log(
                    f"first pass over the training data: {seen + held_out} examples read, {held_out} of them held "
                    f"out for evaluation, {skipped} skipped"
                )
            self._check(end_of_data=pass_ended > 0, pass_without_usable=pass_without_usable > 0)
            if holding == self.world_size:
                batch, self._pending = self._pending, None
                return batch

    def _check(self, end_of_data: bool, pass_without_usable: bool = False) -> None:
        """Raises `TooManyBadExamplesError` on every rank at once (the decision uses the all-reduced totals)."""
        seen, skipped, _ = self.totals
        floor = 0 if end_of_data else self.min_seen
        too_many = seen >= max(floor, 1) and skipped > self.max_skipped_fraction * seen
        if not (pass_without_usable or too_many or (end_of_data and seen - skipped <= 0)):
            return
        everyone = SkipLog.merged(self.gather(self.skips))
        message = everyone.verdict(self.max_skipped_fraction, floor)
        if message is None:  # usable examples exist, but one rank's share has none
            message = (
                f"a whole pass over one process's share of the data found no usable example ({everyone.summary()}): "
                "with several processes, the dataset needs at least as many usable examples (and ideally shards) "
                "as processes"
            )
        raise TooManyBadExamplesError(message)

    def check_final(self) -> None:
        """The rule at the end of a run: no 100-example floor, and no usable example at all always fails."""
        self._check(end_of_data=True)

    def summary(self) -> str:
        """One line (collective: call it on every rank) of what every rank read, held out and skipped, and why."""
        return SkipLog.merged(self.gather(self.skips)).summary()

    def state_dict(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "batches_in_epoch": self.batches_in_epoch,
            "usable_in_epoch": self.usable_in_epoch,
            "skips": self.skips.state_dict(),
            "totals": list(self.totals),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restores a position saved by `state_dict` (before the first `next`)."""
        self.epoch, self.batches_in_epoch = state["epoch"], state["batches_in_epoch"]
        self.usable_in_epoch = state.get("usable_in_epoch", 1)
        self.skips.load_state_dict(state["skips"])
        # Checkpoints from before all-reduced totals: this rank's own counts are the best estimate.
        self.totals = list(state.get("totals", [self.skips.seen, self.skips.skipped, self.skips.held_out]))
        self._batches, self._pending = None, None
