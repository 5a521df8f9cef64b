#!/usr/bin/env python3
"""Regenerate assets/mnist/: the first 10,000 training and first 2,000 test images (with labels) of MNIST.

Usage: python3 scripts/make_embedded.py [SRC_DIR] [DST_DIR]
  SRC_DIR: the four gzipped MNIST IDX files (default /work/shared/data/mnist)
  DST_DIR: where to write them (default assets/mnist)

Only the header's count changes; the bytes of the kept images/labels are copied unchanged. Output is
gzip level 9 with mtime 0, so the same input always gives the same files.
"""
import gzip, os, struct, sys

SRC = sys.argv[1] if len(sys.argv) > 1 else "/work/shared/data/mnist"
DST = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(__file__), "..", "assets", "mnist")
KEEP = {"train": 10_000, "t10k": 2_000}

os.makedirs(DST, exist_ok=True)
for split, n in KEEP.items():
    for kind, magic, header_len in (("images-idx3-ubyte", 0x803, 16), ("labels-idx1-ubyte", 0x801, 8)):
        name = f"{split}-{kind}.gz"
        with gzip.open(os.path.join(SRC, name), "rb") as f:
            raw = f.read()
        fields = list(struct.unpack(">" + "I" * (header_len // 4), raw[:header_len]))
        assert fields[0] == magic, (name, hex(fields[0]))
        item = 1
        for d in fields[2:]:
            item *= d
        assert len(raw) == header_len + fields[1] * item, name
        fields[1] = n
        out = struct.pack(">" + "I" * len(fields), *fields) + raw[header_len:header_len + n * item]
        with open(os.path.join(DST, name), "wb") as f:
            f.write(gzip.compress(out, compresslevel=9, mtime=0))
        print(f"{name}: {n} items, {len(out)} bytes raw")
