#!/usr/bin/env python3
"""phone_oracle.py DRIVER TABLE: wa-users' phone rules against libphonenumber (the phonenumbers
package) as the oracle, over many numbers:

1. the committed services/users/src/phone_table.c (TABLE) is what the generator gives for the
   installed metadata (regenerated and compared);
2. every example number of every region and type, written as E.164, internationally formatted,
   with "00" and without a prefix, canonicalises to its E.164 form;
3. random numbers of every calling code (valid ones, and ones a digit shorter, longer or
   changed): a number libphonenumber finds valid is never refused; a number whose national
   number does not match its country's general pattern, or of an unknown calling code, is
   refused, except rarely (the table checks leading digits only DEPTH deep);
4. numbers of unknown calling codes and of more than 15 digits are refused.
DRIVER is tests/unit/users/phone_driver.c (numbers on stdin, canonical or "-" on stdout).
"""
import os
import random
import re
import subprocess
import sys

import phonenumbers as pn
from phonenumbers.phonenumberutil import COUNTRY_CODE_TO_REGION_CODE

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "..", "..", "services", "users", "gen"))
import phone_table  # noqa: E402

driver, table_path = sys.argv[1], sys.argv[2]
failures = []


def fail(msg):
    if len(failures) < 20:
        print("FAIL:", msg)
    failures.append(msg)


def ask(numbers):
    out = subprocess.run([driver], input="".join(n + "\n" for n in numbers), text=True,
                         capture_output=True, check=True).stdout.split("\n")
    return out[: len(numbers)]


# 1. the committed table is the generator's output
with open(table_path) as f:
    if f.read() != phone_table.render(phone_table.table()):
        fail("phone_table.c differs from services/users/gen/phone_table.py's output "
             "(regenerate it with the pinned phonenumbers)")

# 2. example numbers in every written form
forms, want = [], []
for region in sorted(pn.SUPPORTED_REGIONS) + ["001"]:
    for t in range(0, 11):
        if region == "001":
            continue
        ex = pn.example_number_for_type(region, t)
        if ex is None:
            continue
        e164 = pn.format_number(ex, pn.PhoneNumberFormat.E164)
        if len(e164) > 16:
            continue
        for form in (e164, pn.format_number(ex, pn.PhoneNumberFormat.INTERNATIONAL),
                     "00" + e164[1:], e164[1:]):
            forms.append(form)
            want.append(e164)
for cc in pn.COUNTRY_CODES_FOR_NON_GEO_REGIONS:
    ex = pn.example_number_for_non_geo_entity(cc)
    if ex is not None:
        e164 = pn.format_number(ex, pn.PhoneNumberFormat.E164)
        forms.append(e164)
        want.append(e164)
for form, w, got in zip(forms, want, ask(forms)):
    if got != w:
        fail("example %r: got %r, want %r" % (form, got, w))
n_examples = len(forms)

# 3. random numbers near the valid ones of every calling code
rng = random.Random(11)
cases = []
for cc in sorted(COUNTRY_CODE_TO_REGION_CODE):
    pats = [re.compile("(?:%s)" % p) for p in phone_table.patterns(cc)]
    seqs = set()
    for p in phone_table.patterns(cc):
        seqs |= phone_table.expand(phone_table.sre_parse.parse(p))
    seqs = sorted(seqs, key=lambda s: (len(s), [sorted(x) for x in s]))
    if not seqs:
        continue
    for _ in range(300):
        s = rng.choice(seqs)
        nat = "".join(rng.choice(sorted(x)) for x in s)
        r = rng.random()
        if r < 0.2:
            nat = nat[:-1]
        elif r < 0.4:
            nat += str(rng.randrange(10))
        elif r < 0.6:
            j = rng.randrange(len(nat))
            nat = nat[:j] + str(rng.randrange(10)) + nat[j + 1:]
        cases.append((cc, nat, pats))
answers = ask(["+%d%s" % (cc, nat) for cc, nat, _ in cases])
accepted_invalid = refused_pattern = 0
for (cc, nat, pats), got in zip(cases, answers):
    e164 = "+%d%s" % (cc, nat)
    valid = False
    try:
        parsed = pn.parse(e164)
        # parse() also strips a national prefix written after the calling code
        # ("+49 0..."): only numbers it keeps as written count
        valid = pn.is_valid_number(parsed) and pn.format_number(
            parsed, pn.PhoneNumberFormat.E164) == e164
    except pn.NumberParseException:
        pass
    general = len(e164) <= 16 and any(p.fullmatch(nat) for p in pats)
    if valid and len(e164) <= 16 and got != e164:
        fail("%s is valid for libphonenumber but refused" % e164)
    if general and got != e164:
        fail("%s matches its country's general pattern but is refused" % e164)
    if not general:
        if got == "-":
            refused_pattern += 1
        else:
            accepted_invalid += 1
if accepted_invalid > (accepted_invalid + refused_pattern) // 100:
    fail("%d of %d numbers outside their country's pattern accepted (more than 1 %%)"
         % (accepted_invalid, accepted_invalid + refused_pattern))

# 4. unknown calling codes, too long
known = set(COUNTRY_CODE_TO_REGION_CODE)
bad = []
for cc in range(1, 1000):
    if any(str(k).startswith(str(cc)) or str(cc).startswith(str(k)) for k in known):
        continue
    bad.append("+%d%s" % (cc, "".join(str(rng.randrange(10)) for _ in range(9))))
bad += ["+4930123456789012", "+12015550123" + "4" * 6]
for n, got in zip(bad, ask(bad)):
    if got != "-":
        fail("%s accepted (unknown calling code or too long)" % n)

print("phone oracle: %d example forms, %d random numbers (%d outside their pattern: %d refused, "
      "%d accepted), %d unknown codes or too long; %s" % (
          n_examples, len(cases), refused_pattern + accepted_invalid, refused_pattern,
          accepted_invalid, len(bad), pn.__version__))
sys.exit(1 if failures else 0)
