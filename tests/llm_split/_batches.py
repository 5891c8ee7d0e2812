"""Random left-padded batches for the model tests."""

import torch

VOCAB = 128


def left_padded_batch(batch_size=3, seq_len=10, seed=0):
    """Random tokens; rows 1, 2 left-padded by 3 and 6; labels -100 on padding."""
    g = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(0, VOCAB, (batch_size, seq_len), generator=g)
    mask = torch.ones(batch_size, seq_len, dtype=torch.long)
    mask[1, :3] = 0
    mask[2, :6] = 0
    labels = input_ids.masked_fill(mask == 0, -100)
    return input_ids, mask, labels
