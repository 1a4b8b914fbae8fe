"""Minimal reproduction: verl 0.9.1 loses Qwen2.5-VL (mrope) position ids when every sequence has the same length.

Run with any environment that has verl 0.9.1 and torch (CPU is enough, no model needed):

    python docs/upstream/repro_qwen2_5_vl_position_ids.py

Exit status 1 and "REPRODUCED" when the bug is present, 0 when the installed verl handles both cases.

What happens: `verl.workers.utils.padding.left_right_2_no_padding` turns each sequence's position ids, shape
(4, L_i) for mrope, into one jagged nested tensor with `torch.nested.as_nested_tensor(list, layout=torch.jagged)`.
torch infers the ragged dimension from the data: when the L_i differ it is L (values (4, sum L_i), correct); when all
L_i are equal nothing varies and torch makes the first component dimension (the 4) ragged, values (B*4, L).
`verl.utils.tensordict_utils.maybe_fix_3d_position_ids` (called by the engine workers) then sets `_ragged_idx = 2` on
that tensor, whose offsets still count rows of 4, and the next unbind/select fails (`split_with_sizes expects
split_sizes to sum exactly to L` in a training run, an internal assertion here).
"""

from __future__ import annotations

import sys

import torch
from tensordict import TensorDict
from verl.utils import tensordict_utils as tu
from verl.workers.utils.padding import left_right_2_no_padding


def left_padded_batch(lengths: list[int], width: int = 6) -> TensorDict:
    """A left-padded batch as the rollout hands it to the actor: sequence i has lengths[i] real tokens and mrope
    position ids (4, width), zero on padding."""
    batch = len(lengths)
    attention_mask = torch.zeros(batch, width, dtype=torch.long)
    position_ids = torch.zeros(batch, 4, width, dtype=torch.long)
    for i, n in enumerate(lengths):
        attention_mask[i, width - n :] = 1
        position_ids[i, :, width - n :] = torch.arange(n)
    return TensorDict(
        {
            "input_ids": torch.ones(batch, width, dtype=torch.long),
            "attention_mask": attention_mask,
            "response_mask": torch.ones(batch, 2, dtype=torch.long),
            "position_ids": position_ids,
        },
        batch_size=[batch],
    )


def check(lengths: list[int]) -> str | None:
    """None when the no-padding conversion keeps (4, total tokens) position ids and survives a row selection, else
    a description of what went wrong."""
    data = left_right_2_no_padding(left_padded_batch(lengths))
    tu.maybe_fix_3d_position_ids(data)
    values = data["position_ids"].values()
    if tuple(values.shape) != (4, sum(lengths)):
        problem = f"position_ids values have shape {tuple(values.shape)}, expected (4, {sum(lengths)})"
    else:
        problem = None
    try:
        tu.index_select_tensor_dict(data, torch.tensor(list(reversed(range(len(lengths))))))
    except RuntimeError as error:
        first_line = str(error).splitlines()[0]
        problem = f"{problem + '; ' if problem else ''}row selection fails: {first_line}"
    return problem


def main() -> int:
    failures = 0
    for lengths in ([4, 5], [5, 5]):
        problem = check(lengths)
        print(f"sequence lengths {lengths}: {'ok' if problem is None else problem}")
        failures += problem is not None
    if failures:
        print("REPRODUCED: equal-length sequences break Qwen2.5-VL position ids in verl's no-padding path")
        return 1
    print("not reproduced")
    return 0


if __name__ == "__main__":
    sys.exit(main())
