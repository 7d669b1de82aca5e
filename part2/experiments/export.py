"""Copy a finished run into a folder to commit or share.

    python part2/experiments/export.py summaries/grimm part2/results/grimm

Copies metrics.csv and samples.txt and writes a small checkpoint.pt holding only what
generate.py needs: the weights in float16, the vocabulary and the options (no optimizer state).
"""
import shutil
from pathlib import Path

import torch

from part1 import common


def export(run, out):
    run, out = Path(run), Path(out)
    try:
        ckpt = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=True)
        weights, vocab, options = ckpt["model"], ckpt["vocab"], ckpt["options"]
    except Exception as e:
        raise ValueError(f"{run / 'checkpoint.pt'} is not a readable training checkpoint "
                         f"({type(e).__name__})") from None
    out.mkdir(parents=True, exist_ok=True)
    for name in ("metrics.csv", "samples.txt"):
        shutil.copyfile(run / name, out / name)
    # float16 halves the file; generation loads it back into float32 weights.
    torch.save({"model": {k: v.half() for k, v in weights.items()}, "vocab": vocab,
                "options": options, "step": ckpt["step"]}, out / "checkpoint.pt")


def main(argv=None):
    p = common.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("run", help="--summary_path of a training run")
    p.add_argument("out", help="folder to write into")
    args = p.parse_args(argv)
    export(args.run, args.out)


if __name__ == "__main__":
    common.run(main, "export.py")
