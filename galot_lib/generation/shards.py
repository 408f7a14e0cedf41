"""Generation split over the processes of one Accelerate launch (the text-to-model CLI under
``accelerate launch`` or ``torchrun``): each process renders its share of the batches, and every process
gets the whole set back, in order.

Whole batches are dealt out (batch j to process j mod n), so every image is computed in the same batch,
with the same neighbours, as in a single process: image i depends on its own noise seed only, and the
gathered set equals the single-process set image for image.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


class Shards:
    """The processes of an Accelerate launch, as seen by generation (one process: everything here)."""

    def __init__(self, state=None):
        if state is None:
            from accelerate import PartialState

            state = PartialState(cpu=not torch.cuda.is_available())
        self.state = state

    @property
    def num_processes(self) -> int:
        return self.state.num_processes

    def same(self, obj):
        """``obj`` as the main process has it, on every process (keeps processes in step where the device
        may compute non-deterministically)."""
        if self.num_processes == 1:
            return obj
        from accelerate.utils import broadcast_object_list

        return broadcast_object_list([obj], from_process=0)[0]

    def map_batches(self, batches: int, render: Callable[[int], torch.Tensor]) -> list[torch.Tensor]:
        """``[render(0), ..., render(batches - 1)]`` on every process, each process rendering its share."""
        mine = [(j, render(j).cpu()) for j in range(self.state.process_index, batches, self.num_processes)]
        if self.num_processes == 1:
            return [images for _, images in mine]
        from accelerate.utils import gather_object

        gathered = dict(gather_object(mine))
        return [gathered[j] for j in range(batches)]
