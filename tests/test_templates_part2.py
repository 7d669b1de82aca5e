"""Part 2 through the course template's interfaces: our TextDataset and TextGenerationModel called
exactly as the template's part2/train.py calls them (a DataLoader with the default collate, the
positional constructor, model(batch_inputs), a cross-entropy over the logits), and trained."""
import warnings
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn
import torch.optim as optim
from torch.utils.data import DataLoader

from part2.dataset import TextDataset
from part2.model import TextGenerationModel
from tests.test_part2 import story

# The template's defaults (its part2/train.py), with fewer steps.
TEMPLATE_CONFIG = SimpleNamespace(seq_length=30, lstm_num_hidden=128, lstm_num_layers=2,
                                  batch_size=64, learning_rate=2e-3, max_norm=5.0, train_steps=60)


@pytest.fixture
def book(tmp_path):
    (tmp_path / "book.txt").write_text(story(), encoding="utf-8")
    return tmp_path / "book.txt"


def test_the_dataset_is_a_torch_dataset_of_random_training_windows(book):
    dataset = TextDataset(book, 12)
    assert isinstance(dataset, torch.utils.data.Dataset)
    assert len(dataset) == len(dataset.train_data) - 12
    train_text = dataset.convert_to_string(dataset.train_data.tolist())
    torch.manual_seed(0)
    items = [dataset[0] for _ in range(50)]
    for inputs, targets in items:
        assert inputs.dtype == torch.long and inputs.shape == targets.shape == (12,)
        assert inputs[1:].tolist() == targets[:-1].tolist()
        assert dataset.convert_to_string(inputs.tolist() + targets[-1:].tolist()) in train_text
    assert len({tuple(x.tolist()) for x, _ in items}) > 40  # item 0, fifty different windows
    torch.manual_seed(0)
    assert torch.equal(dataset[5][0], items[0][0])  # torch's seed fixes them, not the item
    assert dataset._ix_to_char == {i: ch for ch, i in dataset._char_to_ix.items()}
    assert dataset.convert_to_string([dataset._char_to_ix[ch] for ch in "the king"]) == "the king"


def test_the_template_constructor_binds_positionally_and_by_name():
    model = TextGenerationModel(64, 30, 11, 48, 3, "cpu")
    assert (model.batch_size, model.seq_length, model.vocabulary_size) == (64, 30, 11)
    assert (model.lstm.hidden_size, model.lstm.num_layers) == (48, 3)
    named = TextGenerationModel(batch_size=64, seq_length=30, vocabulary_size=11,
                                lstm_num_hidden=48, lstm_num_layers=3, device="cpu")
    assert [p.shape for p in named.parameters()] == [p.shape for p in model.parameters()]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has cuda:0")
def test_the_templates_default_device_falls_back_to_the_cpu_with_a_warning():
    with pytest.warns(UserWarning, match="cuda:0.*the model runs on the CPU"):
        model = TextGenerationModel(64, 30, 11)  # device='cuda:0', the template's default
    assert {p.device.type for p in model.parameters()} == {"cpu"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        TextGenerationModel(64, 30, 11, device="cpu")  # a device that exists: no warning


def test_the_templates_training_loop_runs_on_our_classes_and_the_loss_falls(book):
    """The template's train(config), its fixmes filled as the template's lines ask."""
    config = TEMPLATE_CONFIG
    torch.manual_seed(0)
    dataset = TextDataset(str(book), config.seq_length)
    data_loader = DataLoader(dataset, config.batch_size, num_workers=1)
    model = TextGenerationModel(config.batch_size, config.seq_length, dataset.vocab_size,
                                config.lstm_num_hidden, config.lstm_num_layers, "cpu")
    criterion = nn.CrossEntropyLoss()
    optimizer = optim.Adam(model.parameters(), config.learning_rate)
    losses, accuracies = [], []
    for step, (batch_inputs, batch_targets) in enumerate(data_loader):
        assert batch_inputs.shape == batch_targets.shape == (config.batch_size, config.seq_length)
        outputs = model(batch_inputs)
        # The loss line: cross-entropy over every time step of every window (Eq. 13).
        loss = criterion(outputs.transpose(1, 2), batch_targets)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=config.max_norm)
        optimizer.step()
        losses.append(loss.item())
        accuracies.append((outputs.argmax(-1) == batch_targets).float().mean().item())
        if step == config.train_steps:
            break
    assert len(losses) == config.train_steps + 1
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert first > torch.log(torch.tensor(dataset.vocab_size * 0.8)).item()  # about uniform
    assert last < first - 0.5, losses
    assert sum(accuracies[-5:]) > sum(accuracies[:5])


def test_the_loss_lines_two_usual_forms_agree(book):
    """criterion(logits.transpose(1, 2), targets) and over the flattened logits: the same."""
    dataset = TextDataset(book, 10)
    model = TextGenerationModel(4, 10, dataset.vocab_size, 16, 2, "cpu")
    x, y = next(iter(DataLoader(dataset, 4)))
    logits = model(x)
    assert logits.shape == (4, 10, dataset.vocab_size)
    criterion = nn.CrossEntropyLoss()
    torch.testing.assert_close(criterion(logits.transpose(1, 2), y),
                               criterion(logits.reshape(-1, dataset.vocab_size), y.reshape(-1)))
