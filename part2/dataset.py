"""A book as a stream of character ids, with a fixed train/validation split.

The vocabulary is the sorted set of characters, so ids are the same in every run (the template's
list(set(text)) was not) and a checkpoint stores it to decode text without the book.
"""
import re

import torch
import torch.utils.data as data

# Project Gutenberg wraps every book in a licence header and footer between these marker lines.
GUTENBERG_START = re.compile(r"^\*\*\* ?START OF (THE|THIS) PROJECT GUTENBERG EBOOK.*$", re.M)
GUTENBERG_END = re.compile(r"^\*\*\* ?END OF (THE|THIS) PROJECT GUTENBERG EBOOK.*$", re.M)
# Older releases also close the text with "End of (the) Project Gutenberg ..." before the marker.
GUTENBERG_END_LINE = re.compile(r"^End of (the )?Project Gutenberg", re.M | re.I)

VAL_FRACTION = 0.1


def read_text(filename, strip_gutenberg=True):
    """The book's text: UTF-8 without byte-order mark, LF line ends, Gutenberg licence cut off."""
    with open(filename, "rb") as f:
        raw = f.read()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ValueError(f"{filename} is not UTF-8 text (bad byte at offset {e.start})") from None
    if "\x00" in text:  # valid UTF-8, but no book has NUL characters: UTF-16 without its mark
        raise ValueError(f"{filename} holds NUL characters: not UTF-8 text (UTF-16 without a byte-order mark?)")
    text = text.replace("\r\n", "\n")
    if strip_gutenberg:
        start, end = GUTENBERG_START.search(text), GUTENBERG_END.search(text)
        if start and end and start.end() < end.start():
            text = text[start.end():end.start()]
            closing = list(GUTENBERG_END_LINE.finditer(text))
            if closing and len(text) - closing[-1].start() < 1000:
                text = text[:closing[-1].start()]
            text = text.strip("\n") + "\n"
    return text


class TextDataset(data.Dataset):
    """Random training windows from the first 90% of a book; the last 10% is for validation.

    As the template's: dataset[i] is a random window (inputs, targets) of the training split, so
    a DataLoader without shuffling draws random batches; batch() draws a batch in one index."""

    def __init__(self, filename, seq_length, strip_gutenberg=True):
        if seq_length < 1:
            raise ValueError(f"seq_length must be at least 1, got {seq_length}")
        self._seq_length = seq_length
        text = read_text(filename, strip_gutenberg)
        if not text:
            raise ValueError(f"{filename} is empty")
        self._chars = sorted(set(text))
        self._char_to_ix = {ch: i for i, ch in enumerate(self._chars)}
        self._ix_to_char = dict(enumerate(self._chars))
        data = torch.tensor([self._char_to_ix[ch] for ch in text], dtype=torch.long)
        n_train = int(len(data) * (1 - VAL_FRACTION))
        self.train_data, self.val_data = data[:n_train], data[n_train:]
        # A window needs seq_length inputs plus one more character as the last target.
        if len(self.val_data) < seq_length + 1:
            raise ValueError(
                f"{filename} has {len(text)} characters: too short for seq_length {seq_length} "
                f"(its last 10% must hold at least {seq_length + 1})")

    @property
    def vocab_size(self):
        return len(self._chars)

    @property
    def chars(self):
        """The vocabulary as a string: character i has id i."""
        return "".join(self._chars)

    def char_counts(self):
        """How often each character occurs in the training split, indexed by id."""
        return torch.bincount(self.train_data, minlength=self.vocab_size)

    def convert_to_string(self, char_ix):
        return "".join(self._ix_to_char[ix] for ix in char_ix)

    def __len__(self):
        """The number of offsets a training window can start at."""
        return len(self.train_data) - self._seq_length

    def __getitem__(self, item):
        """Inputs and targets (seq_length ids each) from a random offset of the training split,
        drawn by torch's generator (torch.manual_seed fixes it; DataLoader seeds each worker);
        `item` is ignored, as in the template."""
        offset = torch.randint(len(self), ()).item()
        window = self.train_data[offset:offset + self._seq_length + 1]
        return window[:-1], window[1:]

    def batch(self, batch_size, generator=None):
        """Inputs and targets (batch_size, seq_length) from random offsets in the training split."""
        offsets = torch.randint(len(self), (batch_size,), generator=generator)
        idx = offsets[:, None] + torch.arange(self._seq_length + 1)
        windows = self.train_data[idx]
        return windows[:, :-1], windows[:, 1:]

    def val_streams(self, n_streams=64):
        """The validation split as inputs and targets (n, length): n consecutive pieces of the text,
        so that with the LSTM state carried along each row every character is a target once."""
        n = max(1, min(n_streams, (len(self.val_data) - 1) // self._seq_length))
        length = (len(self.val_data) - 1) // n
        x = self.val_data[:n * length].view(n, length)
        y = self.val_data[1:n * length + 1].view(n, length)
        return x, y

    def val_windows(self, length):
        """The validation split cut into consecutive windows: inputs and targets (n, length), each
        read from a zero state, so a character's context starts at its window's first character.
        A split shorter than one window gives one window of all of it."""
        length = min(length, len(self.val_data) - 1)
        n = (len(self.val_data) - 1) // length
        x = self.val_data[:n * length].view(n, length)
        y = self.val_data[1:n * length + 1].view(n, length)
        return x, y
