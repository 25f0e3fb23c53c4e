#!/usr/bin/env python3
"""Generates src/io/unicode_tables.inc from the Unicode Character Database.

Source: Debian's `unicode-data` package (apt-get install -y unicode-data), files
/usr/share/unicode/{UnicodeData.txt, CompositionExclusions.txt, PropList.txt}.

The tokenizer needs, per code point:
  - a coarse general category: Letter (L*), Number (N*), Mark (M*) -- for \\p{L}, \\p{N};
  - White_Space (PropList.txt) -- the \\s of the Oniguruma regexes HF tokenizers run;
  - NFC data: canonical combining classes, full canonical decompositions, the primary
    composites (minus the full composition exclusions), and the NFC quick-check set
    (code points with NFC_QC = No/Maybe or a non-zero combining class) so that text that
    is already NFC is recognised without decomposing it.
Hangul syllables are handled algorithmically in unicode.cpp and are not in the tables.

Usage: python3 tools/gen_unicode_tables.py [UCD_DIR]     (default /usr/share/unicode)
  writes src/io/unicode_tables.inc next to this script's repository root.
"""
import os
import re
import sys

S_BASE, L_COUNT, V_COUNT, T_COUNT = 0xAC00, 19, 21, 28
S_COUNT = L_COUNT * V_COUNT * T_COUNT


def parse_unicode_data(path):
    cat, ccc, decomp = {}, {}, {}
    first = None
    with open(path, encoding="utf-8") as f:
        for line in f:
            fields = line.rstrip("\n").split(";")
            cp = int(fields[0], 16)
            name, gc = fields[1], fields[2]
            if name.endswith(", First>"):
                first = cp
                continue
            if name.endswith(", Last>"):
                for c in range(first, cp + 1):
                    cat[c] = gc
                    if int(fields[3]):
                        ccc[c] = int(fields[3])
                continue
            cat[cp] = gc
            if int(fields[3]):
                ccc[cp] = int(fields[3])
            d = fields[5]
            if d and not d.startswith("<"):  # canonical only; <tag> = compatibility
                decomp[cp] = [int(x, 16) for x in d.split()]
    return cat, ccc, decomp


def parse_code_point_list(path, prop=None):
    out = set()
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            parts = [p.strip() for p in line.split(";")]
            if prop is not None and (len(parts) < 2 or parts[1] != prop):
                continue
            r = parts[0]
            if ".." in r:
                a, b = r.split("..")
                out.update(range(int(a, 16), int(b, 16) + 1))
            else:
                out.add(int(r, 16))
    return out


def ranges(cps_to_value):
    """[(start, end, value)] for maximal runs of consecutive code points with equal value."""
    out = []
    for cp in sorted(cps_to_value):
        v = cps_to_value[cp]
        if out and out[-1][1] == cp - 1 and out[-1][2] == v:
            out[-1][1] = cp
        else:
            out.append([cp, cp, v])
    return out


def full_decomp(cp, decomp):
    if cp not in decomp:
        return [cp]
    out = []
    for c in decomp[cp]:
        out.extend(full_decomp(c, decomp))
    return out


def main():
    ucd = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/unicode"
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out_path = os.path.join(root, "src", "io", "unicode_tables.inc")
    with open(os.path.join(ucd, "ReadMe.txt"), encoding="utf-8") as f:
        m = re.search(r"Version (\d+\.\d+\.\d+)", f.read())
    version = m.group(1) if m else "unknown"

    cat, ccc, decomp = parse_unicode_data(os.path.join(ucd, "UnicodeData.txt"))
    exclusions = parse_code_point_list(os.path.join(ucd, "CompositionExclusions.txt"))
    white = parse_code_point_list(os.path.join(ucd, "PropList.txt"), "White_Space")

    # Coarse categories: 1 = Letter, 2 = Number, 3 = Mark.
    cls = {}
    for cp, gc in cat.items():
        if gc[0] in "LNM":
            cls[cp] = {"L": 1, "N": 2, "M": 3}[gc[0]]

    # Full composition exclusions: the listed exclusions, singletons, non-starter decompositions.
    compose = {}
    full_excl = set(exclusions)
    for cp, d in decomp.items():
        if len(d) == 1 or ccc.get(cp, 0) != 0 or ccc.get(d[0], 0) != 0:
            full_excl.add(cp)
    for cp, d in decomp.items():
        if cp in full_excl:
            continue
        assert len(d) == 2, hex(cp)
        compose[(d[0], d[1])] = cp

    # NFC quick check: No = full exclusions; Maybe = second element of a composition pair
    # (and Hangul V/T jamo); plus anything with ccc != 0 (canonical reordering may apply).
    nfc_qc = set(full_excl) | {b for (_, b) in compose}
    nfc_qc |= set(range(0x1161, 0x1161 + V_COUNT)) | set(range(0x11A8, 0x11A8 + T_COUNT - 1))
    unsafe = nfc_qc | set(ccc)

    # Cross-check against the derived property when the file is there.
    dnp = os.path.join(ucd, "DerivedNormalizationProps.txt")
    if os.path.exists(dnp):
        derived = set()
        with open(dnp, encoding="utf-8") as f:
            for line in f:
                line = line.split("#", 1)[0].strip()
                parts = [p.strip() for p in line.split(";")]
                if len(parts) == 3 and parts[1] == "NFC_QC":
                    r = parts[0]
                    a, b = r.split("..") if ".." in r else (r, r)
                    derived.update(range(int(a, 16), int(b, 16) + 1))
        assert derived == nfc_qc, "NFC_QC mismatch: %d vs %d" % (len(derived), len(nfc_qc))

    decomp_full = {cp: full_decomp(cp, decomp) for cp in decomp}

    lines = []
    w = lines.append
    w("// Generated by tools/gen_unicode_tables.py from the Unicode Character Database %s" % version)
    w("// (Debian unicode-data: UnicodeData.txt, CompositionExclusions.txt, PropList.txt).")
    w("// Do not edit: rerun the script. Included only by src/io/unicode.cpp.")
    w("")
    w("static const char* const kUnicodeVersion = \"%s\";" % version)
    w("")
    w("// Coarse general category runs: 1 = Letter (L*), 2 = Number (N*), 3 = Mark (M*).")
    w("static const CategoryRange kCategoryRanges[] = {")
    for a, b, v in ranges(cls):
        w("    {0x%X, 0x%X, %d}," % (a, b, v))
    w("};")
    w("")
    w("// White_Space (PropList.txt).")
    w("static const CodeRange kWhiteSpaceRanges[] = {")
    for a, b, _ in ranges({c: 1 for c in white}):
        w("    {0x%X, 0x%X}," % (a, b))
    w("};")
    w("")
    w("// Canonical combining class runs (non-zero only).")
    w("static const CategoryRange kCombiningClassRanges[] = {")
    for a, b, v in ranges(ccc):
        w("    {0x%X, 0x%X, %d}," % (a, b, v))
    w("};")
    w("")
    w("// NFC quick check: code points whose presence means the text may not be NFC.")
    w("static const CodeRange kNfcUnsafeRanges[] = {")
    for a, b, _ in ranges({c: 1 for c in unsafe}):
        w("    {0x%X, 0x%X}," % (a, b))
    w("};")
    w("")
    data = []
    entries = []
    for cp in sorted(decomp_full):
        d = decomp_full[cp]
        entries.append((cp, len(data), len(d)))
        data.extend(d)
    w("// Full canonical decompositions: {code point, offset into kDecompositionData, length}.")
    w("static const Decomposition kDecompositions[] = {")
    for cp, off, n in entries:
        w("    {0x%X, %d, %d}," % (cp, off, n))
    w("};")
    w("static const uint32_t kDecompositionData[] = {")
    for i in range(0, len(data), 10):
        w("    " + " ".join("0x%X," % c for c in data[i:i + 10]))
    w("};")
    w("")
    w("// Primary composites: {first, second, composite}, sorted by (first, second).")
    w("static const Composition kCompositions[] = {")
    for (a, b) in sorted(compose):
        w("    {0x%X, 0x%X, 0x%X}," % (a, b, compose[(a, b)]))
    w("};")
    text = "\n".join(lines) + "\n"
    with open(out_path, "w", encoding="utf-8") as f:
        f.write(text)
    print("wrote %s (Unicode %s): %d category runs, %d decompositions, %d composites" %
          (out_path, version, len(ranges(cls)), len(entries), len(compose)))


if __name__ == "__main__":
    main()
