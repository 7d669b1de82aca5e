"""Part 2: dataset, model, generation and training on small texts made here."""
import csv
import itertools
import math
import random
import re
import signal
import warnings
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from part2 import train as train_script
from part2.dataset import TextDataset, read_text
from part2.generate import beam_search, encode, generate, log_prob, next_char_probs
from part2.model import TextGenerationModel

BOOKS = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "books"
WORDS = "the king queen frog wolf little girl went into forest and said to her golden ball".split()



def small_model(vocabulary_size, lstm_num_hidden, lstm_num_layers=2, **options):
    """The template's constructor, on the CPU (batch and window length do not matter to it)."""
    return TextGenerationModel(8, 16, vocabulary_size, lstm_num_hidden, lstm_num_layers, "cpu",
                               **options)


def story(n_words=1500, seed=0):
    rng = random.Random(seed)
    sentences, words = [], 0
    while words < n_words:
        k = rng.randint(3, 9)
        sentences.append(" ".join(rng.choice(WORDS) for _ in range(k)).capitalize() + ".")
        words += k
    return "\n".join(sentences) + "\n"


@pytest.fixture
def book(tmp_path):
    path = tmp_path / "book.txt"
    path.write_text(story(), encoding="utf-8")
    return path


# dataset

def test_split_is_last_tenth_and_training_windows_stay_in_the_first_ninety_percent(book):
    text = book.read_text(encoding="utf-8")
    ds = TextDataset(book, seq_length=12)
    n_train = int(len(text) * 0.9)
    assert ds.convert_to_string(ds.train_data.tolist()) == text[:n_train]
    assert ds.convert_to_string(ds.val_data.tolist()) == text[n_train:]
    x, y = ds.batch(500, torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (500, 12)
    train_text = text[:n_train]
    for xi, yi in zip(x.tolist(), y.tolist(), strict=True):
        window = ds.convert_to_string(xi + yi[-1:])
        assert window in train_text
        assert xi[1:] == yi[:-1]  # targets are the inputs shifted by one character


def test_validation_streams_cover_the_split_once(book):
    ds = TextDataset(book, seq_length=7)
    x, y = ds.val_streams(n_streams=5)
    assert x.shape == y.shape and x.shape[0] == 5
    assert torch.equal(x.flatten(), ds.val_data[:x.numel()])
    assert torch.equal(y.flatten(), ds.val_data[1:x.numel() + 1])
    assert len(ds.val_data) - 1 - x.numel() < 5  # at most a few characters left out


def test_validation_loss_carries_the_state_over_chunks(book):
    ds = TextDataset(book, seq_length=7)
    torch.manual_seed(0)
    model = small_model(ds.vocab_size, 16, embedding_dim=4)
    x, y = ds.val_streams()
    logits = model(x)
    expected = F.cross_entropy(logits.flatten(0, 1), y.flatten()).item()
    loss, accuracy = train_script.evaluate(model, ds, "cpu", chunk=5)
    assert loss == pytest.approx(expected, rel=1e-5)
    assert accuracy == pytest.approx((logits.argmax(-1) == y).float().mean().item())


def test_sequence_length_and_the_shortest_book_it_fits(tmp_path):
    path = tmp_path / "b.txt"
    path.write_text("abcdefghij" * 10, encoding="utf-8")  # 90 training, 10 validation characters
    assert TextDataset(path, 1).val_streams()[0].shape == (9, 1)
    ds = TextDataset(path, 9)  # the validation split holds exactly one window and its target
    x, y = ds.val_streams()
    assert x.shape == (1, 9) and torch.equal(y[0], ds.val_data[1:])
    for bad, message in ((10, r"too short for seq_length 10 \(its last 10% must hold at least 11\)"),
                         (0, "at least 1")):
        with pytest.raises(ValueError, match=message):
            TextDataset(path, bad)


def test_training_windows_reach_the_last_training_character(tmp_path):
    path = tmp_path / "b.txt"
    path.write_text("abcdefghijklmnopqrstuvwxyzABCD", encoding="utf-8")  # 27 training characters
    ds = TextDataset(path, 2)
    x, y = ds.batch(2000, torch.Generator().manual_seed(0))
    windows = {ds.convert_to_string(xi + yi[-1:]) for xi, yi in zip(x.tolist(), y.tolist(), strict=True)}
    text = "abcdefghijklmnopqrstuvwxyzA"
    assert windows == {text[i:i + 3] for i in range(25)}  # every offset, the last ends at "A"


def test_validation_streams_never_more_than_asked_or_than_fit(book):
    ds = TextDataset(book, 7)
    assert ds.val_streams()[0].shape[0] == 64  # val_loss reads 64 long streams (part2/README.md)
    assert ds.val_streams(n_streams=3)[0].shape[0] == 3
    fit = (len(ds.val_data) - 1) // 7
    assert ds.val_streams(n_streams=10 * fit)[0].shape == (fit, (len(ds.val_data) - 1) // fit)


def test_a_validation_split_shorter_than_a_window_is_one_window_of_all_of_it(tmp_path):
    path = tmp_path / "b.txt"
    path.write_text("abcdefghij" * 10, encoding="utf-8")  # 10 validation characters
    ds = TextDataset(path, 5)
    x, y = ds.val_windows(256)
    assert torch.equal(x, ds.val_data[None, :-1]) and torch.equal(y, ds.val_data[None, 1:])


def test_a_character_only_in_the_validation_split_counts_zero_and_the_bias_still_starts(tmp_path):
    path = tmp_path / "b.txt"
    path.write_text(story() + "The end\u2026\n", encoding="utf-8")  # the ellipsis sorts last
    ds = TextDataset(path, 8)
    assert ds.chars[-1] == "\u2026" and "\u2026" not in ds.convert_to_string(ds.train_data.tolist())
    counts = ds.char_counts()
    assert counts.shape == (ds.vocab_size,) and counts[-1] == 0
    model = small_model(ds.vocab_size, 16, 1, embedding_dim=8)
    model.init_output_bias(counts)
    assert model.output.bias.argmin() == ds.vocab_size - 1


def test_vocabulary_is_sorted_so_ids_do_not_depend_on_the_run(tmp_path):
    path = tmp_path / "b.txt"
    path.write_text("zebra apple Mango 42!\n" * 20, encoding="utf-8")
    ds = TextDataset(path, 5)
    assert list(ds.chars) == sorted(set(ds.chars))
    assert ds.vocab_size == len(set("zebra apple Mango 42!\n"))
    assert ds.convert_to_string(range(ds.vocab_size)) == ds.chars


def test_byte_order_mark_and_crlf_are_removed(tmp_path):
    path = tmp_path / "bom.txt"
    path.write_bytes("\ufeffOnce upon a time\r\nthere was a king.\r\n".encode("utf-8"))
    assert read_text(path) == "Once upon a time\nthere was a king.\n"


# Marker lines as real Project Gutenberg books have them: the two books in shared/data/books
# (older releases: "THIS", a closing "End of ... Project Gutenberg ..." line, which may wrap), the
# current releases ("THE"), and the older ones without a space after the asterisks.
GUTENBERG_VARIANTS = {
    "grimm-2591": ("*** START OF THIS PROJECT GUTENBERG EBOOK GRIMMS’ FAIRY TALES ***",
                   "End of Project Gutenberg’s Grimms’ Fairy Tales, by The Brothers Grimm\n\n"
                   "*** END OF THIS PROJECT GUTENBERG EBOOK GRIMMS’ FAIRY TALES ***"),
    "democracy-815": ("*** START OF THIS PROJECT GUTENBERG EBOOK DEMOCRACY IN AMERICA, V1 ***",
                      "End of the Project Gutenberg EBook of Democracy In America, Volume 1 (of 2), "
                      "by \nAlexis de Toqueville\n\n"
                      "*** END OF THIS PROJECT GUTENBERG EBOOK DEMOCRACY IN AMERICA, V1 ***"),
    "capital-the": ("*** START OF THIS PROJECT GUTENBERG EBOOK THE ADVENTURES OF SHERLOCK HOLMES ***",
                    "End of The Project Gutenberg EBook of The Adventures of Sherlock Holmes\n\n"
                    "*** END OF THIS PROJECT GUTENBERG EBOOK THE ADVENTURES OF SHERLOCK HOLMES ***"),
    "current": ("*** START OF THE PROJECT GUTENBERG EBOOK GRIMMS' FAIRY TALES ***",
                "*** END OF THE PROJECT GUTENBERG EBOOK GRIMMS' FAIRY TALES ***"),
    "no-space": ("***START OF THE PROJECT GUTENBERG EBOOK THE ADVENTURES OF TOM SAWYER***",
                 "***END OF THE PROJECT GUTENBERG EBOOK THE ADVENTURES OF TOM SAWYER***"),
}


@pytest.mark.parametrize("crlf", [False, True], ids=["lf", "crlf"])
@pytest.mark.parametrize("variant", GUTENBERG_VARIANTS)
def test_gutenberg_header_and_footer_are_cut_from_real_marker_variants(tmp_path, variant, crlf):
    start, end = GUTENBERG_VARIANTS[variant]
    body = "THE GOLDEN BIRD\n\nA certain king had a beautiful garden.\n\n* * * * *\n\nTHE END\n"
    text = ("\ufeffThe Project Gutenberg EBook of Tales, by Somebody\n\nThis eBook is for the use of "
            "anyone anywhere at no cost\n\n" + start + "\n\n\n\n" + body + "\n\n\n\n" + end +
            "\n\n***** This file should be named 2591-0.txt *****\nlicence text\n")
    path = tmp_path / "g.txt"
    path.write_bytes((text.replace("\n", "\r\n") if crlf else text).encode("utf-8"))
    assert read_text(path) == body
    assert read_text(path, strip_gutenberg=False) == text[1:]  # only the BOM and CRs go


@pytest.mark.parametrize("distance, cut", [(999, True), (1000, False), (5000, False)])
def test_an_end_of_project_gutenberg_line_is_cut_only_near_the_end(tmp_path, distance, cut):
    """Only the closing line goes: one earlier in the book (here a quotation) stays."""
    start, end = GUTENBERG_VARIANTS["current"]
    line = "End of the Project Gutenberg quotation\n"
    tail = line + "x" * (distance - len(line) - 1) + "\n"
    path = tmp_path / "g.txt"
    path.write_text(f"{start}\nbody\n{tail}{end}\n", encoding="utf-8")
    assert read_text(path) == ("body\n" if cut else "body\n" + tail)


@pytest.mark.parametrize("body", [
    "                          GRIMMS' FAIRY TALES\n\n\tTHE GOLDEN BIRD\n",
    "XII. THE TWELVE BROTHERS\n\nThere were once a king and a queen.\n",
], ids=["centred-title", "roman-numeral"])
def test_only_the_blank_lines_around_the_book_go(tmp_path, body):
    """The book's first and last lines are kept as they are, a centred title's indent too."""
    start, end = GUTENBERG_VARIANTS["current"]
    path = tmp_path / "g.txt"
    path.write_text(f"licence\n{start}\n\n\n{body}\n\n{end}\nlicence\n", encoding="utf-8")
    assert read_text(path) == body


def test_the_dataset_strips_the_licence_unless_asked_and_draws_by_its_generator(tmp_path):
    start, end = GUTENBERG_VARIANTS["current"]
    path = tmp_path / "g.txt"
    path.write_text(f"licence\n{start}\n" + story() + f"{end}\nlicence\n", encoding="utf-8")
    kept, cut = TextDataset(path, 8, strip_gutenberg=False), TextDataset(path, 8)
    assert len(kept.train_data) + len(kept.val_data) == len(read_text(path, strip_gutenberg=False))
    assert len(cut.train_data) + len(cut.val_data) == len(story())
    a, b = (cut.batch(16, torch.Generator().manual_seed(5))[0] for _ in range(2))
    assert torch.equal(a, b)


def test_a_book_without_both_markers_is_kept_whole(tmp_path):
    start, _ = GUTENBERG_VARIANTS["current"]
    for text in ("No licence here.\n", start + "\nthe tale\n"):
        path = tmp_path / "b.txt"
        path.write_text(text, encoding="utf-8")
        assert read_text(path) == text


@pytest.mark.parametrize("name", ["grimms_fairy_tales.txt", "democracy_in_the_us.txt"])
def test_the_shared_books_lose_every_line_of_the_licence(name):
    path = BOOKS / name
    if not path.is_file():
        pytest.skip(f"{path} is not here")
    text = read_text(path)
    assert "Gutenberg" not in text and "\r" not in text and not text.startswith("\ufeff")
    assert 0.9 < len(text) / path.stat().st_size < 1  # the licence is a few percent of the file


# model

def test_unigram_bias_starts_the_model_at_the_character_frequencies(book):
    dataset = TextDataset(book, 16)
    counts = dataset.char_counts()
    text = read_text(book)[:len(dataset.train_data)]
    assert [counts[i].item() for i in range(dataset.vocab_size)] == \
        [text.count(ch) for ch in dataset.chars]
    model = small_model(dataset.vocab_size, 24, 2, embedding_dim=8)
    model.init_output_bias(counts)
    torch.nn.init.zeros_(model.output.weight)
    logits = model(dataset.train_data[None, :50])
    expected = (counts + 1) / (counts + 1).sum()
    assert torch.allclose(logits.softmax(-1), expected.float().expand_as(logits), atol=1e-6)


@pytest.mark.parametrize("embedding_dim", [0, 8])
def test_model_shapes_and_carried_state_equal_one_long_pass(embedding_dim):
    torch.manual_seed(0)
    model = small_model(11, 16, 2, embedding_dim=embedding_dim).eval()
    x = torch.randint(11, (3, 10))
    logits, (h, c) = model.forward_with_state(x)
    assert logits.shape == (3, 10, 11)
    assert h.shape == c.shape == (2, 3, 16)
    torch.testing.assert_close(model(x), logits, rtol=0, atol=0)  # the template's call
    first, state = model.forward_with_state(x[:, :4])
    second, _ = model.forward_with_state(x[:, 4:], state)
    torch.testing.assert_close(torch.cat([first, second], 1), logits)


def test_the_default_model_is_the_templates_with_train_pys_embedding_and_no_dropout():
    """The template's TextGenerationModel(batch_size, seq_length, vocabulary_size,
    lstm_num_hidden=256, lstm_num_layers=2), with train.py's --embedding_dim and
    --lstm_num_layers defaults; no dropout unless asked."""
    torch.manual_seed(0)
    model = TextGenerationModel(64, 30, 11, device="cpu")
    defaults = train_script.parse_args([])
    assert model.embedding.weight.shape == (11, defaults.embedding_dim)
    assert (model.lstm.hidden_size, model.lstm.num_layers) == (256, 2) == \
        (model.output.in_features, defaults.lstm_num_layers)
    x = torch.randint(11, (2, 5))
    assert torch.equal(model.train()(x), model(x))


def lstm_input_and_output(model, x):
    """What the LSTM reads, what it returns and what the read-out reads in one forward pass."""
    seen = {}
    hooks = [model.lstm.register_forward_hook(
                 lambda m, args, out: seen.update(lstm_in=args[0], lstm_out=out[0])),
             model.output.register_forward_pre_hook(lambda m, args: seen.update(readout_in=args[0]))]
    logits = model(x)
    for hook in hooks:
        hook.remove()
    return seen, logits


def dropped(full, seen, keep):
    """Check seen is full with each entry either zeroed or scaled by 1 / keep; the zeroed share."""
    zero = seen == 0
    assert torch.allclose(seen[~zero], full[~zero] / keep)
    return zero.float().mean().item()


def test_io_dropout_drops_the_lstms_input_and_output_in_training_mode_only():
    torch.manual_seed(0)
    model = small_model(11, 16, 2, embedding_dim=8, dropout_keep_prob=0.5, io_dropout=True)
    x = torch.randint(11, (4, 20))
    seen, _ = lstm_input_and_output(model.train(), x)
    assert 0.4 < dropped(model.embedding(x), seen["lstm_in"], 0.5) < 0.6
    assert 0.4 < dropped(seen["lstm_out"], seen["readout_in"], 0.5) < 0.6
    seen, _ = lstm_input_and_output(model.eval(), x)
    assert torch.equal(seen["lstm_in"], model.embedding(x))
    assert torch.equal(seen["readout_in"], seen["lstm_out"])


def test_without_io_dropout_the_keep_probability_drops_between_the_layers_only():
    torch.manual_seed(0)
    x = torch.randint(11, (4, 20))
    model = small_model(11, 16, 2, embedding_dim=8, dropout_keep_prob=0.5).train()
    (seen, first), (_, second) = lstm_input_and_output(model, x), lstm_input_and_output(model, x)
    assert torch.equal(seen["lstm_in"], model.embedding(x))
    assert torch.equal(seen["readout_in"], seen["lstm_out"])
    assert not torch.equal(first, second)  # between the two layers
    model.eval()
    assert torch.equal(model(x), model(x))


def test_a_one_layer_model_takes_a_keep_probability_silently_and_drops_nothing():
    """nn.LSTM drops out between layers only, and warns when given dropout with one layer."""
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = small_model(11, 16, 1, embedding_dim=8, dropout_keep_prob=0.5).train()
    x = torch.randint(11, (4, 20))
    assert torch.equal(model(x), model(x))


def test_one_hot_input_spans_the_vocabulary_whatever_the_characters_read():
    """A one-hot model (embedding_dim 0) reads a prompt without the vocabulary's last characters."""
    model = small_model(11, 16, 2, embedding_dim=0).eval()
    x = torch.tensor([[0, 3, 3]])
    seen, logits = lstm_input_and_output(model, x)
    assert torch.equal(seen["lstm_in"], torch.eye(11)[x]) and logits.shape == (1, 3, 11)


# generation

@pytest.fixture(scope="module")
def trained():
    """A small model trained briefly on the story, so its predictions are not uniform."""
    torch.manual_seed(0)
    text = story()
    vocab = "".join(sorted(set(text)))
    data = torch.tensor(encode(vocab, text))
    model = small_model(len(vocab), 32, embedding_dim=8)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(150):
        starts = torch.randint(len(data) - 21, (32,))
        windows = data[starts[:, None] + torch.arange(21)]
        logits = model(windows[:, :-1])
        loss = F.cross_entropy(logits.flatten(0, 1), windows[:, 1:].flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval(), vocab


def test_one_step_at_a_time_generation_equals_a_full_forward_pass(trained):
    model, vocab = trained
    prompt = torch.tensor([encode(vocab, "The king"), encode(vocab, "A frog s")])
    out = generate(model, prompt, 40)
    logits = model(torch.cat([prompt, out], 1))
    # Each greedy character is the argmax of the full pass's prediction at its position.
    assert torch.equal(logits[:, prompt.shape[1] - 1:-1].argmax(-1), out)


def test_sampled_text_scores_as_the_full_pass_says(trained):
    model, vocab = trained
    prompt = torch.tensor(encode(vocab, "The "))
    out = generate(model, prompt[None], 25, temperature=1.0,
                   generator=torch.Generator().manual_seed(1))[0]
    logits = model(torch.cat([prompt, out])[None])
    logp = F.log_softmax(logits[0, 3:-1], -1).gather(1, out[:, None]).sum().item()
    assert log_prob(model, prompt, out) == pytest.approx(logp, abs=1e-4)


@pytest.mark.parametrize("prompt_text", ["The king", "Little", "and"])
def test_beam_search_scores_at_least_as_high_as_greedy(trained, prompt_text):
    model, vocab = trained
    prompt = torch.tensor(encode(vocab, prompt_text))
    greedy = generate(model, prompt[None], 30)[0]
    greedy_score = log_prob(model, prompt, greedy)
    ids, score = beam_search(model, prompt, 30, beam_size=5)
    assert score == pytest.approx(log_prob(model, prompt, ids), abs=1e-3)
    assert score >= greedy_score - 1e-4
    ids1, score1 = beam_search(model, prompt, 30, beam_size=1)
    assert torch.equal(ids1, greedy)  # a beam of one is greedy decoding
    assert score1 == pytest.approx(greedy_score, abs=1e-3)


class Bigram(torch.nn.Module):
    """A model whose next character depends on the last one only: probabilities NEXT[last]."""

    def __init__(self, next_probs):
        super().__init__()
        self.next_log_probs = next_probs.log()

    def forward(self, x):
        return self.next_log_probs[x]

    def forward_with_state(self, x, state=None):
        # The state carries nothing, but has the (layers, batch, hidden) shape generation reorders.
        return self.next_log_probs[x], (torch.zeros(1, x.shape[0], 1),)


# After the prompt's 2, 0 is likeliest, but after 0 everything is uncertain, while 1 is almost
# surely followed by 1: the best 4 characters are 1111 (0.3 * 0.98^3), and greedy's 0000
# (0.5 * 0.34^3) is e^2.7 times less likely. A beam of 2 (of 81 sequences) finds 1111.
NEXT = torch.tensor([[0.34, 0.33, 0.33], [0.01, 0.98, 0.01], [0.5, 0.3, 0.2]])


def test_beam_search_finds_what_brute_force_finds_where_greedy_cannot():
    model, prompt = Bigram(NEXT), torch.tensor([2])

    def score(seq):  # summed log-probability, straight from the table
        return sum(math.log(NEXT[a, b]) for a, b in zip([2, *seq], seq, strict=False))
    best = max(itertools.product(range(3), repeat=4), key=score)
    assert best == (1, 1, 1, 1)
    greedy = generate(model, prompt[None], 4)[0]
    assert score(greedy.tolist()) < score(best) - 2  # greedy is far from the best
    for beam_size in (2, 3):
        ids, got = beam_search(model, prompt, 4, beam_size)
        assert tuple(ids.tolist()) == best and got == pytest.approx(score(best), abs=1e-5)
    ids, got = beam_search(model, prompt, 4, beam_size=1)
    assert torch.equal(ids, greedy) and got == pytest.approx(score(greedy.tolist()), abs=1e-5)


@pytest.mark.parametrize("beam_size", [2, 3])
def test_beam_search_keeps_the_best_prefixes_at_every_step(trained, beam_size):
    """Against beam search done by hand: every candidate prefix scored by a fresh full pass."""
    model, vocab = trained
    prompt = torch.tensor(encode(vocab, "The k"))
    beams = [()]
    for _ in range(6):
        candidates = [seq + (c,) for seq in beams for c in range(len(vocab))]
        beams = sorted(candidates, key=lambda seq: log_prob(model, prompt, torch.tensor(seq)),
                       reverse=True)[:beam_size]
    ids, score = beam_search(model, prompt, 6, beam_size)
    assert tuple(ids.tolist()) == beams[0]
    assert score == pytest.approx(log_prob(model, prompt, ids), abs=1e-4)


def test_temperature_multiplies_the_logits():
    logits = torch.tensor([[2.0, -1.0, 0.5, 3.0]])
    torch.testing.assert_close(next_char_probs(logits, 1e-6), torch.full((1, 4), 0.25),
                               atol=1e-5, rtol=0)
    torch.testing.assert_close(next_char_probs(logits, 1e4), torch.tensor([[0., 0, 0, 1]]))
    sharper, flatter = next_char_probs(logits, 2.0), next_char_probs(logits, 0.5)
    assert sharper.max() > next_char_probs(logits, 1.0).max() > flatter.max()


def test_sampling_at_a_huge_temperature_is_greedy(trained):
    model, vocab = trained
    prompt = torch.tensor([encode(vocab, "The wolf")])
    sampled = generate(model, prompt, 30, temperature=1e4, generator=torch.Generator())
    assert torch.equal(sampled, generate(model, prompt, 30))


def test_a_prompt_character_outside_the_vocabulary_is_named():
    with pytest.raises(ValueError) as error:
        encode("abc ", "a #b~#")
    assert str(error.value) == "the model's vocabulary has no '#', '~'; it knows: 'abc '"


# training

def run_train(book, summary, *extra):
    train_script.main(["--txt_file", str(book), "--summary_path", str(summary),
                       "--seq_length", "16", "--lstm_num_hidden", "24", "--embedding_dim", "8",
                       "--batch_size", "16", "--dropout_keep_prob", "0.8",
                       "--learning_rate_step", "7", "--print_every", "3", "--eval_every", "10",
                       "--sample_every", "5", *extra])


def assert_same_run(a_dir, b_dir):
    a = torch.load(a_dir / "checkpoint.pt", weights_only=True)
    b = torch.load(b_dir / "checkpoint.pt", weights_only=True)
    assert a["step"] == b["step"] == 30
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    for sa, sb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values(), strict=True):
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert a["optimizer"]["param_groups"] == b["optimizer"]["param_groups"]
    assert all(torch.equal(a["rng"][k], b["rng"][k]) for k in ("torch", "data", "sample"))
    assert (a_dir / "samples.txt").read_text() == (b_dir / "samples.txt").read_text()

    def rows(run):  # everything but the timings
        with open(run / "metrics.csv") as f:
            return [{k: v for k, v in r.items() if k not in ("seconds", "chars_per_second")}
                    for r in csv.DictReader(f)]
    assert rows(a_dir) == rows(b_dir)


def test_a_run_extended_by_resume_equals_an_uninterrupted_run(book, tmp_path):
    # Without the linear decay the schedule does not depend on the run's length.
    run_train(book, tmp_path / "straight", "--train_steps", "30", "--no-linear_decay")
    run_train(book, tmp_path / "split", "--train_steps", "10", "--no-linear_decay")
    run_train(book, tmp_path / "split", "--train_steps", "30", "--resume")
    assert_same_run(tmp_path / "straight", tmp_path / "split")


def test_a_run_interrupted_and_resumed_equals_an_uninterrupted_run(book, tmp_path, monkeypatch):
    run_train(book, tmp_path / "straight", "--train_steps", "30")
    # Ctrl-C during step 12, where a metrics row ends, so the split run logs the same rows.
    batch, calls = TextDataset.batch, []

    def ctrl_c_during_step_12(self, *args):
        calls.append(1)
        if len(calls) == 12:
            signal.raise_signal(signal.SIGINT)
        return batch(self, *args)

    monkeypatch.setattr(TextDataset, "batch", ctrl_c_during_step_12)
    with pytest.raises(SystemExit) as stopped:
        run_train(book, tmp_path / "split", "--train_steps", "30")
    assert stopped.value.code == 130
    assert torch.load(tmp_path / "split" / "checkpoint.pt", weights_only=True)["step"] == 12
    monkeypatch.setattr(TextDataset, "batch", batch)
    run_train(book, tmp_path / "split", "--train_steps", "30", "--resume")
    assert_same_run(tmp_path / "straight", tmp_path / "split")


def test_linear_decay_reaches_zero_at_the_end_of_the_run_by_steps_or_by_the_clock():
    args = train_script.parse_args(["--learning_rate", "0.01", "--train_steps", "100",
                                    "--learning_rate_step", "50", "--learning_rate_decay", "0.5"])
    lr = [train_script.learning_rate(args, step, 0.0) for step in (0, 25, 50, 75, 100)]
    assert lr == pytest.approx([0.01, 0.0075, 0.0025, 0.00125, 0.0])
    args.max_time = 10.0
    assert train_script.learning_rate(args, 0, 5.0) == pytest.approx(0.005)
    assert train_script.learning_rate(args, 75, 5.0) == pytest.approx(0.00125)
    args.linear_decay = False
    assert train_script.learning_rate(args, 75, 5.0) == pytest.approx(0.005)


def test_training_writes_metrics_samples_and_a_checkpoint(book, tmp_path):
    run_train(book, tmp_path, "--train_steps", "12")
    with open(tmp_path / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["step"] for r in rows] == ["3", "6", "9", "10", "12", "12"]
    assert rows[-1]["val_loss"] and rows[-1]["val_accuracy"]  # final full evaluation
    assert float(rows[3]["val_loss"]) > 0 and 0 <= float(rows[3]["val_accuracy"]) <= 1
    samples = (tmp_path / "samples.txt").read_text(encoding="utf-8")
    # Every --sample_every steps, and at the end of the run.
    assert re.findall(r"^step (\d+)$", samples, re.M) == ["5", "10", "12"]
    assert samples.count("greedy ") == 15 and "tau=0.5" in samples and "tau=2.0" in samples
    ckpt = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert ckpt["step"] == 12 and ckpt["vocab"] == "".join(sorted(set(story())))
