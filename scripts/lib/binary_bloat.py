"""What takes the space in a function binary: its sections, and its code and data by crate.

Reads an unstripped ELF (build with CARGO_PROFILE_RELEASE_STRIP=false; stripping only drops the
symbol tables, so the rest is the deployed binary) and sums symbol sizes per crate: Rust symbols by
the first segment of their (legacy-mangled) path, C symbols by their library prefix (aws-lc, ring).
Symbols without a size (LTO-merged, assembly) stay in "unattributed".

Usage: python binary_bloat.py [--top N] [--json OUT] BINARY
"""

import argparse
import json
import re
import struct
import sys
from collections import Counter

C_PREFIXES = [("aws_lc_", "aws-lc-sys (C)"), ("ring_core_", "ring (C/asm)"), ("GFp_", "ring (C/asm)")]


def sections(data):
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    headers = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    names = headers[shstrndx]
    def name(offset):
        start = names[4] + offset
        return data[start:data.index(b"\0", start)].decode()
    return [(name(h[0]), h) for h in headers]


def crate_of(symbol):
    for prefix, crate in C_PREFIXES:
        if symbol.startswith(prefix):
            return crate
    if symbol.startswith("_ZN"):
        match = re.match(r"_ZN\d+(.*)", symbol)
        ident = match.group(1) if match else symbol
        if ident.startswith("_$LT$") or ident.startswith("$LT$"):
            # <Type as Trait>::method: the crate of the type.
            inner = ident.split("$LT$", 1)[1]
            inner = inner.lstrip("&_").removeprefix("mut$u20$").removeprefix("dyn$u20$")
            return re.split(r"\.\.|\$", inner, maxsplit=1)[0] or "?"
        length = re.match(r"_ZN(\d+)", symbol)
        return ident[: int(length.group(1))] if length else "?"
    if symbol.startswith("_R"):
        match = re.search(r"C[s\d_]*?(\d+)([a-zA-Z_][a-zA-Z0-9_]*)", symbol)
        return match.group(2)[: int(match.group(1))] if match else "?"
    return "other (C, libc, runtime)"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--json")
    parser.add_argument("binary")
    args = parser.parse_args()
    data = open(args.binary, "rb").read()
    table = sections(data)
    by_name = {name: header for name, header in table}
    if ".symtab" not in by_name:
        sys.exit(f"{args.binary} is stripped: build with CARGO_PROFILE_RELEASE_STRIP=false")
    symtab, strtab = by_name[".symtab"], by_name[".strtab"]
    # What `strip = true` removes: the symbol tables and the debug sections.
    dropped = sum(h[5] for n, h in table if n in (".symtab", ".strtab") or n.startswith(".debug"))
    print(f"{args.binary}: {len(data):,} bytes, about {len(data) - dropped:,} without symbols and debug info (as deployed)")
    print("  sections:")
    for name, header in sorted(table, key=lambda t: -t[1][5])[:14]:
        if name not in (".symtab", ".strtab") and not name.startswith(".debug") and header[1] != 8:  # 8 = NOBITS
            print(f"    {name:<20} {header[5]:>10,}")
    crates, seen = Counter(), set()
    for offset in range(symtab[4], symtab[4] + symtab[5], 24):
        name_offset, info, _, shndx, value, size = struct.unpack_from("<IBBHQQ", data, offset)
        if size == 0 or shndx == 0 or (info & 0xF) not in (1, 2) or (value, size) in seen:
            continue  # 1 = OBJECT, 2 = FUNC; aliases counted once
        seen.add((value, size))
        start = strtab[4] + name_offset
        crates[crate_of(data[start:data.index(b"\0", start)].decode(errors="replace"))] += size
    code = sum(h[5] for n, h in table if n in (".text", ".rodata", ".data.rel.ro", ".data"))
    print(f"  by crate (symbol sizes; {sum(crates.values()):,} of {code:,} bytes of .text/.rodata/.data attributed):")
    for crate, size in crates.most_common(args.top):
        print(f"    {crate:<28} {size:>10,}")
    if args.json:
        json.dump({"bytes": len(data), "deployed_bytes": len(data) - dropped, "crates": dict(crates)},
                  open(args.json, "w"), indent=2)


if __name__ == "__main__":
    main()
