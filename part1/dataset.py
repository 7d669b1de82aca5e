"""Palindrome numbers: the toy memorisation task of part 1.

A palindrome of length T reads the same both ways, so its last digit equals its first.
The network sees the first T-1 digits and must predict the last one, which means
carrying the first digit across T-1 time steps.
"""
import math
import sys

import numpy as np
import torch
import torch.utils.data as data


class PalindromeDataset(data.Dataset):
    """Endless palindromes of length `seq_length` (the course template's interface).

    `dataset[i]` returns (first T-1 digits as float32 array, last digit as int), drawn with
    NumPy's global RNG as the template did. For training and evaluation use the vectorized,
    seeded `sample_batch` and `evaluation_set` instead: no Python loop per digit, no DataLoader.
    """

    def __init__(self, seq_length):
        if seq_length < 2:
            raise ValueError(f"a palindrome needs length T >= 2 (one input digit and the target), got {seq_length}")
        self.seq_length = seq_length

    def __len__(self):
        # Palindromes are drawn on the fly, so the dataset is as large as anyone asks.
        return sys.maxsize

    def __getitem__(self, idx):
        full_palindrome = self.generate_palindrome()
        return full_palindrome[0:-1], int(full_palindrome[-1])

    def generate_palindrome(self):
        left = np.random.randint(0, 10, size=math.ceil(self.seq_length / 2)).astype(np.float32)
        right = np.flip(left, 0) if self.seq_length % 2 == 0 else np.flip(left[:-1], 0)
        return np.concatenate((left, right))

    def sample_batch(self, batch_size, generator=None, device="cpu"):
        """A batch of palindromes as (inputs, targets): int64 digits (batch, T-1) and (batch,).

        Draws the left half at once and mirrors it; `generator` (a torch.Generator on
        `device`) makes the stream reproducible.
        """
        T = self.seq_length
        left = torch.randint(0, 10, (batch_size, math.ceil(T / 2)), generator=generator, device=device)
        full = torch.cat((left, left[:, : T // 2].flip(1)), dim=1)
        return full[:, :-1], full[:, -1]

    def evaluation_set(self, size, seed):
        """A fixed held-out set of `size` palindromes drawn from its own `seed` (on the CPU)."""
        generator = torch.Generator().manual_seed(seed)
        return self.sample_batch(size, generator=generator)


def encode_digits(x, input_dim, dtype=torch.float32, max_length=None):
    """A model's inputs x^(t), shape (batch, length, input_dim), from what a student feeds it.

    Digits (batch, length), integer or float as the template's DataLoader gives them, are encoded:
    input_dim 10 as one-hot vectors, input_dim 1 as the digit's raw value (the template's default).
    Vectors (batch, length, input_dim) already encoded, e.g. x.unsqueeze(-1) or one-hot, are only
    cast to `dtype`, so that a gradient reaches x. With `max_length` (the model's seq_length), a
    longer sequence is refused: it is most likely a time-first batch.
    """
    if x.dim() not in (2, 3):
        raise ValueError(f"x must be digits (batch, seq_length) or vectors (batch, seq_length, input_dim), "
                         f"got shape {tuple(x.shape)}")
    length = x.shape[1]
    if length < 1:
        raise ValueError(f"x has no time steps, got shape {tuple(x.shape)}")
    if max_length is not None and length > max_length:
        raise ValueError(f"x has {length} time steps, more than the model's seq_length {max_length} "
                         f"(inputs are batch first), got shape {tuple(x.shape)}")
    if x.dim() == 3:
        if x.shape[2] != input_dim:
            raise ValueError(f"x has vectors of size {x.shape[2]}, but the model's input_dim is {input_dim}")
        return x.to(dtype)
    if input_dim == 10:
        return torch.nn.functional.one_hot(x.long(), 10).to(dtype)
    if input_dim == 1:
        return x.to(dtype).unsqueeze(-1)
    raise ValueError(f"input_dim must be 1 (raw digit) or 10 (one-hot) to encode digits, got {input_dim}; "
                     f"feed vectors (batch, seq_length, {input_dim}) instead")
