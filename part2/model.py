"""A character-level language model: embedding, stacked LSTM, linear read-out."""
import torch
import torch.nn as nn
import torch.nn.functional as F


class TextGenerationModel(nn.Module):
    def __init__(self, vocabulary_size, lstm_num_hidden=256, lstm_num_layers=2,
                 embedding_dim=64, dropout_keep_prob=1.0, io_dropout=False, tie_weights=False):
        super().__init__()
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

    def forward(self, x, state=None):
        """Logits (batch, time, vocabulary) for ids x (batch, time), and the LSTM state after x."""
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
