"""Generate text with a trained model: greedy, temperature sampling, or beam search.

    python part2/generate.py --checkpoint part2/results/grimm/checkpoint.pt --prompt "Sleeping beauty is"

Generation is stateful: the prompt is read once, then the LSTM takes one step per new character.
"""
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from part1 import common
from part2.model import TextGenerationModel

# Limits that keep a typo (--length 1e7) from running for hours or filling the memory.
MAX_LENGTH, MAX_BEAM, MAX_SAMPLES = 100_000, 1_000, 1_000

def load_checkpoint(path, device="cpu"):
    """The model (in eval mode), its vocabulary string and training options from a checkpoint."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path} is a directory, not a checkpoint file")
    if not path.is_file():
        raise ValueError(f"{path}: no such checkpoint file")
    try:
        ckpt = torch.load(path, map_location=device, weights_only=True)
        vocab, options = ckpt["vocab"], ckpt["options"]
        model = TextGenerationModel(options["batch_size"], options["seq_length"], len(vocab),
                                    options["lstm_num_hidden"], options["lstm_num_layers"], device,
                                    embedding_dim=options["embedding_dim"])
        model.load_state_dict(ckpt["model"])  # also turns float16 weights back into float32
    except Exception as e:
        raise ValueError(f"{path} is not a readable part-2 checkpoint ({type(e).__name__})") from None
    return model.to(device).eval(), vocab, options


def encode(vocab, text):
    """Character ids of text; every character must be in the vocabulary."""
    missing = sorted(set(text) - set(vocab))
    if missing:
        raise ValueError(f"the model's vocabulary has no {', '.join(map(repr, missing))}; "
                         f"it knows: {vocab!r}")
    return [vocab.index(ch) for ch in text]


def decode(vocab, ids):
    return "".join(vocab[i] for i in ids)


def next_char_probs(logits, temperature):
    """softmax(temperature * logits), the assignment's definition: larger is greedier."""
    return F.softmax(temperature * logits, dim=-1)


@torch.no_grad()
def generate(model, prompt, length, temperature=None, generator=None):
    """Continue each row of the id tensor prompt (batch, P) by length characters.

    temperature None picks the most likely character (greedy), otherwise samples from
    softmax(temperature * logits) with the given CPU generator. Returns ids (batch, length).
    """
    logits, state = model.forward_with_state(prompt)
    out = []
    for _ in range(length):
        last = logits[:, -1]
        if temperature is None:
            char = last.argmax(-1, keepdim=True)
        else:
            probs = next_char_probs(last, temperature).cpu()
            char = torch.multinomial(probs, 1, generator=generator).to(prompt.device)
        out.append(char)
        logits, state = model.forward_with_state(char, state)
    return torch.cat(out, 1)


@torch.no_grad()
def beam_search(model, prompt, length, beam_size):
    """The continuation of the id tensor prompt (P,) with the highest summed log-probability
    among the beam_size best partial sequences kept at each step. Returns (ids, score)."""
    logits, state = model.forward_with_state(prompt[None])
    scores = torch.zeros(1, device=prompt.device)
    seqs = prompt.new_empty(1, 0)
    for t in range(length):
        candidates = scores[:, None] + F.log_softmax(logits[:, -1], -1)
        scores, flat = candidates.flatten().topk(min(beam_size, candidates.numel()))
        beam, char = flat // candidates.shape[1], flat % candidates.shape[1]
        seqs = torch.cat([seqs[beam], char[:, None]], 1)
        state = tuple(s[:, beam] for s in state)
        if t < length - 1:
            logits, state = model.forward_with_state(char[:, None], state)
    return seqs[0], scores[0].item()


@torch.no_grad()
def log_prob(model, prompt, continuation):
    """Summed log-probability of continuation (C,) after prompt (P,) under the model."""
    logits = model(torch.cat([prompt, continuation])[None, :-1])
    logp = F.log_softmax(logits[0, len(prompt) - 1:], -1)
    return logp.gather(1, continuation[:, None]).sum().item()


def temperature_note(tau):
    """What a temperature means here, for a sample's header: the assignment's τ multiplies the
    logits, where nanoGPT and pytorch/examples' word_language_model divide them by T = 1/τ."""
    mood = "greedier" if tau > 1 else "more random" if tau < 1 else "the model's own probabilities"
    return (f"τ = {tau:g} multiplies the logits, softmax(τ·logits) as the assignment defines it "
            f"({mood}; nanoGPT's temperature T = 1/τ = {1 / tau:.3g})")


def parse_args(argv=None):
    p = common.ArgumentParser(description=__doc__.split("\n")[0],
                              formatter_class=common.StatedDefaultsHelpFormatter)
    p.add_argument("--checkpoint", required=True,
                   help="checkpoint.pt written by train.py or export.py (required)")
    p.add_argument("--prompt", default=None,
                   help="text to continue (default: one random character of the vocabulary)")
    p.add_argument("--length", type=common.int_up_to(MAX_LENGTH), default=200,
                   help=f"number of characters to add to the prompt (at most {MAX_LENGTH:,})")
    p.add_argument("--method", choices=["greedy", "sample", "beam"], default="sample",
                   help="greedy: the likeliest character each step; sample: drawn at "
                        "--temperature; beam: beam search with --beam_size")
    p.add_argument("--temperature", type=common.positive_float, default=1.0,
                   help="τ for --method sample: the next character is drawn from "
                        "softmax(τ·logits), the assignment's definition, so τ MULTIPLIES the "
                        "logits: larger τ is greedier (τ → ∞ is greedy), smaller τ is more random "
                        "(τ → 0 is uniform). nanoGPT and pytorch/examples' word_language_model "
                        "divide the logits by their temperature T, so τ = 1/T: τ = 0.5 here is "
                        "their T = 2")
    p.add_argument("--beam_size", type=common.int_up_to(MAX_BEAM), default=5,
                   help=f"for --method beam (at most {MAX_BEAM:,}: each step scores beam_size x vocabulary candidates)")
    p.add_argument("--num_samples", type=common.int_up_to(MAX_SAMPLES), default=1,
                   help="texts to print, each marked by a '--- sample N ---' line when more than one")
    p.add_argument("--seed", type=common.non_negative_int, default=0,
                   help="for sampling and the random first character")
    p.add_argument("--score", action="store_true",
                   help="after each text, print its continuation's summed log-probability")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(1)  # one character at a time: a second thread only waits
    device = common.resolve_device(args.device)  # one line for a device this machine lacks
    model, vocab, _ = load_checkpoint(args.checkpoint, device)
    if args.prompt is not None and not encode(vocab, args.prompt):
        raise ValueError("--prompt is empty; leave it out to start from a random character")
    if args.method == "sample":  # on stderr, so that stdout holds only the texts
        print(f"[sampling: {temperature_note(args.temperature)}]", file=sys.stderr)
    generator = torch.Generator().manual_seed(args.seed)
    for i in range(args.num_samples):
        if args.num_samples > 1:  # samples may hold blank lines, so mark where each begins
            print(f"--- sample {i + 1} ---")
        if args.prompt is None:
            prompt_ids = torch.randint(len(vocab), (1,), generator=generator).tolist()
        else:
            prompt_ids = encode(vocab, args.prompt)
        prompt = torch.tensor(prompt_ids, device=device)
        if args.method == "beam":
            ids, score = beam_search(model, prompt, args.length, args.beam_size)
        else:
            temperature = args.temperature if args.method == "sample" else None
            ids = generate(model, prompt[None], args.length, temperature, generator)[0]
            score = log_prob(model, prompt, ids)
        print(decode(vocab, prompt_ids + ids.tolist()))
        if args.score:
            print(f"[log-probability of the {args.length} new characters: {score:.3f}]")


if __name__ == "__main__":
    common.run(main, "generate.py")
