#!/usr/bin/env python3
"""phone_table.py: generates services/users/src/phone_table.c, wa-users' per-country phone rules,
from the metadata of the `phonenumbers` package (Google's libphonenumber, PyPI).

For each country calling code, the national numbers the metadata allows (the general
description's pattern of every region sharing the code, e.g. the 25 regions of +1) are expanded
into sequences of digit sets, then into a trie of leading digits, DEPTH digits deep at most: each
entry is (calling code, leading digits, the set of national-number lengths valid after them).
Subtrees whose leaves all allow the same lengths collapse into one entry, so the table is
compact (~1,800 entries) and exact on lengths and on the first DEPTH digits; digits beyond
DEPTH are not checked. services/users/src/phone.c reads the table (longest matching prefix).

    phone_table.py             write the table to stdout
    phone_table.py FILE        write it to FILE
Run with a Python that has phonenumbers (deploy/local/ops-tools.sh installs the pinned version
into its venv; `deploy/local/ops-tools.sh --print` prints OPS_PYTHON). The test
users_phone_oracle regenerates the table and fails when the committed one differs.
"""
import sys

try:  # Python >= 3.11
    import re._parser as sre_parse
    from re._constants import (BRANCH, CATEGORY, CATEGORY_DIGIT, IN, LITERAL, MAX_REPEAT,
                               MAXREPEAT, MIN_REPEAT, RANGE, SUBPATTERN)
except ImportError:  # pragma: no cover
    import sre_parse
    from sre_constants import (BRANCH, CATEGORY, CATEGORY_DIGIT, IN, LITERAL, MAX_REPEAT,
                               MAXREPEAT, MIN_REPEAT, RANGE, SUBPATTERN)

import phonenumbers
from phonenumbers import PhoneMetadata
from phonenumbers.phonenumberutil import COUNTRY_CODE_TO_REGION_CODE

DEPTH = 4
DIGITS = frozenset("0123456789")


def expand(items):
    """A parsed regular expression (libphonenumber's subset: digits, classes, groups,
    alternation, bounded repetition) as the set of its digit-set sequences."""
    out = {()}
    for op, av in items:
        if op is LITERAL:
            alts = {(frozenset(chr(av)),)}
        elif op is IN:
            s = set()
            for o, a in av:
                if o is LITERAL:
                    s.add(chr(a))
                elif o is RANGE:
                    s.update(chr(c) for c in range(a[0], a[1] + 1))
                elif o is CATEGORY and a is CATEGORY_DIGIT:
                    s.update(DIGITS)
                else:
                    raise ValueError("unsupported class item %r" % ((o, a),))
            alts = {(frozenset(s),)}
        elif op is SUBPATTERN:
            alts = expand(av[-1])
        elif op is BRANCH:
            alts = set()
            for b in av[1]:
                alts |= expand(b)
        elif op in (MAX_REPEAT, MIN_REPEAT):
            lo, hi, sub = av
            if hi == MAXREPEAT:
                raise ValueError("unbounded repetition")
            inner = expand(sub)
            alts, cur = set(), {()}
            for k in range(hi + 1):
                if k >= lo:
                    alts |= cur
                cur = {a + b for a in cur for b in inner}
        elif op is CATEGORY and av is CATEGORY_DIGIT:
            alts = {(DIGITS,)}
        else:
            raise ValueError("unsupported pattern element %r" % (op,))
        out = {a + b for a in out for b in alts}
    return out


def patterns(cc):
    """The general-description patterns of every region (or non-geographic entity) of cc."""
    out = []
    for region in COUNTRY_CODE_TO_REGION_CODE[cc]:
        m = PhoneMetadata.metadata_for_region_or_calling_code(cc, region)
        if m is not None and m.general_desc is not None and m.general_desc.national_number_pattern:
            out.append(m.general_desc.national_number_pattern)
    return out


def trie(seqs, depth):
    """('leaf', lengths mask) or ('node', mask of numbers ending here, [10 children])."""
    mask = 0
    for s in seqs:
        mask |= 1 << len(s)
    if depth == DEPTH or not seqs:
        return ("leaf", mask)
    here = 0
    kids = []
    for d in "0123456789":
        kids.append(trie([s for s in seqs if len(s) > depth and d in s[depth]], depth + 1))
    for s in seqs:
        if len(s) == depth:
            here |= 1 << depth
    if here == 0 and all(k[0] == "leaf" for k in kids) and len({k[1] for k in kids}) == 1:
        return ("leaf", kids[0][1])
    return ("node", here, kids)


def entries(t, prefix, out):
    if t[1]:
        out.append((prefix, t[1]))
    if t[0] == "node":
        for d, k in zip("0123456789", t[2]):
            entries(k, prefix + d, out)


def table():
    rows = []
    for cc in sorted(COUNTRY_CODE_TO_REGION_CODE):
        pats = patterns(cc)
        seqs = set()
        for p in pats:
            seqs |= expand(sre_parse.parse(p))
        if not seqs:
            continue
        out = []
        entries(trie(sorted(seqs, key=len), 0), "", out)
        rows += [(cc, prefix, mask) for prefix, mask in sorted(out)]
    return rows


def render(rows):
    lines = [
        "/*",
        " * phone_table.c: GENERATED by services/users/gen/phone_table.py from the metadata of",
        " * phonenumbers %s (libphonenumber); do not edit, regenerate." % phonenumbers.__version__,
        " * Per calling code: leading digits of the national number (at most %d) and the set of"
        % DEPTH,
        " * national-number lengths valid after them (bit n: n digits). Sorted by (cc, prefix).",
        " */",
        '#include "users.h"',
        "",
        'const char us_phone_metadata[] = "phonenumbers %s";' % phonenumbers.__version__,
        "",
        "/* one rule a line, as generated, so a metadata update diffs line by line */",
        "/* clang-format off */",
        "const struct us_phone_rule us_phone_rules[] = {",
    ]
    for cc, prefix, mask in rows:
        lines.append('    {%d, "%s", 0x%xu},' % (cc, prefix, mask))
    lines += [
        "};",
        "/* clang-format on */",
        "",
        "const size_t us_phone_nrules = sizeof(us_phone_rules) / sizeof(us_phone_rules[0]);",
        "",
    ]
    return "\n".join(lines)


def main():
    text = render(table())
    if len(sys.argv) > 1:
        with open(sys.argv[1], "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
