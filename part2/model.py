"""A character-level language model: embedding, stacked LSTM, linear read-out."""
import warnings

import torch
import torch.nn as nn
import torch.nn.functional as F

from part1 import common


def available_device(name):
    """The device asked for, or the CPU with a warning where this machine has no such device
    (the template's default, 'cuda:0', on a machine without a GPU)."""
    try:
        return common.resolve_device(name)
    except ValueError as e:
        warnings.warn(f"{e}: the model runs on the CPU", stacklevel=3)
        return torch.device("cpu")


class TextGenerationModel(nn.Module):
    """The template's constructor; our choices (embedding, dropout, tied weights) are keywords.

    batch_size and seq_length are the template's arguments: nn.LSTM takes any batch and length,
    so they are only kept as attributes."""

    def __init__(self, batch_size, seq_length, vocabulary_size, lstm_num_hidden=256,
                 lstm_num_layers=2, device="cuda:0", *, embedding_dim=64, dropout_keep_prob=1.0,
                 io_dropout=False, tie_weights=False):
        super().__init__()
        self.batch_size, self.seq_length = batch_size, seq_length
        self.vocabulary_size = vocabulary_size
        # embedding_dim 0 feeds one-hot vectors, as the assignment's plain LSTM does.
        self.embedding = nn.Embedding(vocabulary_size, embedding_dim) if embedding_dim else None
        input_size = embedding_dim or vocabulary_size
        # nn.LSTM applies dropout between layers only, so it needs at least two; io_dropout also
        # drops the LSTM's input and output, as pytorch/examples' word_language_model does.
        p = 1 - dropout_keep_prob
        self.lstm = nn.LSTM(input_size, lstm_num_hidden, lstm_num_layers, batch_first=True,
                            dropout=p if lstm_num_layers > 1 else 0.0)
        self.drop = nn.Dropout(p) if io_dropout and p > 0 else nn.Identity()
        self.output = nn.Linear(lstm_num_hidden, vocabulary_size)
        if tie_weights:
            # One matrix both embeds a character and scores it (Press & Wolf, 2017).
            if embedding_dim != lstm_num_hidden:
                raise ValueError(f"tied weights need --embedding_dim equal to --lstm_num_hidden "
                                 f"({embedding_dim} != {lstm_num_hidden})")
            self.output.weight = self.embedding.weight
        self.to(available_device(device))

    def forward(self, x):
        """Logits (batch, time, vocabulary) for ids x (batch, time), read from a zero state:
        the template's call, whose logits go straight into a cross-entropy."""
        return self.forward_with_state(x)[0]

    def forward_with_state(self, x, state=None):
        """Logits for ids x read on from the LSTM state `state` (None: a zero state), and the
        state after x: generation reads a prompt once, then takes one step per character."""
        if self.embedding is not None:
            inputs = self.embedding(x)
        else:
            inputs = F.one_hot(x, self.vocabulary_size).float()
        hidden, state = self.lstm(self.drop(inputs), state)
        return self.output(self.drop(hidden)), state

    @torch.no_grad()
    def init_output_bias(self, char_counts):
        """Start the read-out at the characters' frequencies, softmax(b) = (counts + 1) / total,
        so the first steps need not learn them (it gave a lower loss after the same steps)."""
        smoothed = char_counts.double() + 1
        self.output.bias.copy_((smoothed / smoothed.sum()).log())
