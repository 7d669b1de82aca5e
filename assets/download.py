"""Download a book from Project Gutenberg into assets/ (Grimms' Fairy Tales by default).

    python assets/download.py                 # ebook 2591 -> assets/book.txt
    python assets/download.py --ebook 815 --out assets/democracy_in_the_us.txt
"""
import argparse
import sys
import urllib.request
from pathlib import Path

from tqdm import tqdm

URL = "https://www.gutenberg.org/cache/epub/{0}/pg{0}.txt"


def download(ebook, out):
    url = URL.format(ebook)
    tmp = out.with_name(out.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=30) as response, open(tmp, "wb") as f:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=f"ebook {ebook}") as bar:
                while chunk := response.read(1 << 16):
                    f.write(chunk)
                    bar.update(len(chunk))
    except BaseException:
        tmp.unlink(missing_ok=True)  # a broken download never leaves half a book behind
        raise
    tmp.replace(out)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--ebook", type=int, default=2591, help="Project Gutenberg ebook number")
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "book.txt")
    args = p.parse_args()
    try:
        download(args.ebook, args.out)
    except OSError as e:  # urllib.error.URLError is an OSError
        reason = getattr(e, "reason", e)
        sys.exit(f"download.py: could not fetch {URL.format(args.ebook)} ({reason}).\n"
                 f"Offline? Copy a plain-text (UTF-8) copy of the book to {args.out} by hand, "
                 f"or train on any UTF-8 .txt file with part2/train.py --txt_file FILE.")
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
