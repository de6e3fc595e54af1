#!/usr/bin/python3
"""Write host/engine/imagenet_labels.txt: the 1000 ImageNet-1k category names,
one a line, as torchvision lists them (torchvision.models._meta._IMAGENET_CATEGORIES,
which ships with torchvision). The build embeds that file in libcnx
(cmake/embed_lines.cmake), where cnx_imagenet_label() reads it."""

import argparse
import os
import sys

PROG = "gen_imagenet_labels.py"
DEFAULT_OUTPUT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "host",
                                               "engine", "imagenet_labels.txt"))


def generate(categories):
    """The file's text: one name a line. A name that is empty or holds a line
    break could not be read back, so it is refused."""
    for i, name in enumerate(categories):
        if not name or "\n" in name or "\r" in name:
            raise ValueError(f"category {i} ({name!r}) cannot be one line of text")
    return "".join(name + "\n" for name in categories)


def main(argv=None):
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Write host/engine/imagenet_labels.txt, the 1000 ImageNet-1k category names "
                    "from the installed torchvision (torchvision.models._meta._IMAGENET_CATEGORIES; "
                    "no network needed), which the build embeds in libcnx.")
    p.add_argument("-o", "--output", default=DEFAULT_OUTPUT,
                   help="file to write (default: host/engine/imagenet_labels.txt in this repository)")
    p.add_argument("--check", action="store_true",
                   help="write nothing; exit 1 if OUTPUT differs from what would be generated")
    args = p.parse_args(argv)
    try:
        from torchvision.models._meta import _IMAGENET_CATEGORIES as categories
    except ImportError as e:
        print(f"{PROG}: error: cannot read torchvision's ImageNet categories ({e})", file=sys.stderr)
        return 2
    if len(categories) != 1000:
        print(f"{PROG}: error: torchvision lists {len(categories)} categories, expected 1000",
              file=sys.stderr)
        return 2
    try:
        text = generate(categories)
    except ValueError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    if args.check:
        try:
            with open(args.output, encoding="utf-8", newline="") as f:
                same = f.read() == text
        except OSError as e:
            print(f"{PROG}: error: {args.output}: {e.strerror}", file=sys.stderr)
            return 2
        if not same:
            print(f"{PROG}: {args.output} is out of date; rerun {PROG}", file=sys.stderr)
            return 1
        return 0
    try:
        with open(args.output, "w", encoding="utf-8", newline="") as f:
            f.write(text)
    except OSError as e:
        print(f"{PROG}: error: {args.output}: {e.strerror}", file=sys.stderr)
        return 2
    print(f"wrote {args.output}: {len(categories)} labels")
    return 0


if __name__ == "__main__":
    sys.exit(main())
