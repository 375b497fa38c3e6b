#!/usr/bin/env python3
"""seed_analytics.py URI DB N DAYS: writes N message documents (and the customers' replies)
straight into wa-analytics' MongoDB collections, spread evenly over the DAYS days before now, in
the shape wa-analytics' consumer writes them (services/analytics/src/timeline.c; README "Model"):
for deploy/local/bench.d/60-analytics.sh, which times a summary over them. Bulk inserts of 1,000
documents (unordered); prints the documents written and the rate. Deterministic (seeded RNG).

Mix: 2 % failed (131026, 131047, 131049, 131050 in turn), 3 % sent only, 15 % delivered only,
the rest read; templates and categories from a short list; about 15 % of the read messages get
a reply within the hour (one `inbound` document each). Needs pymongo (deploy/local/ops-tools.sh
installs it into its venv).
"""
import random
import sys
import time

import pymongo

uri, db_name, n, days = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
rng = random.Random(12)
db = pymongo.MongoClient(uri, serverSelectionTimeoutMS=20000)[db_name]
now = int(time.time() * 1000)
start = now - days * 86400000
templates = [("order_update", "utility"), ("shipping_notice", "utility"),
             ("spring_sale", "marketing"), ("otp_code", "authentication")]
codes = [131026, 131047, 131049, 131050]
batch, inbound, written, replies = [], [], 0, 0
t0 = time.time()


def flush():
    global batch, inbound, written, replies
    if batch:
        db.messages.insert_many(batch, ordered=False)
        written += len(batch)
    if inbound:
        db.inbound.insert_many(inbound, ordered=False)
        replies += len(inbound)
    batch, inbound = [], []


for i in range(n):
    at = start + (i * (days * 86400000)) // max(n, 1)
    name, category = templates[i % len(templates)]
    contact = "1555%07d" % rng.randrange(10000000)
    doc = {"_id": "bench-%08d" % i, "request_id": "bench-%08d" % i,
           "wamid": "wamid.bench%08d" % i, "phone_number_id": "100000000000001",
           "type": "template", "template": name, "category": category, "contact": contact,
           "country": "1", "at": at, "t": {"requested": at, "accepted": at + rng.randrange(30, 300)}}
    r = rng.random()
    if r < 0.02:
        code = codes[i % len(codes)]
        doc.update(rank=5, error={"code": code, "title": "bench", "details": "bench"})
        doc["t"]["failed"] = at + rng.randrange(500, 5000)
    else:
        t = doc["t"]
        t["sent"] = t["accepted"] + rng.randrange(200, 2000)
        rank = 2
        if r >= 0.05:
            t["delivered"] = t["sent"] + rng.randrange(100, 3000)
            rank = 3
            if r >= 0.20:
                t["read"] = t["delivered"] + rng.randrange(1000, 600000)
                rank = 4
                if rng.random() < 0.15:
                    inbound.append({"_id": "wamid.benchin%08d" % i, "contact": contact,
                                    "phone_number_id": "100000000000001",
                                    "at": t["read"] + rng.randrange(1000, 3600000)})
        doc["rank"] = rank
        doc["pricing"] = {"category": category, "type": "regular", "billable": True}
    batch.append(doc)
    if len(batch) >= 1000:
        flush()
flush()
for coll, keys in (("messages", [("at", 1)]), ("inbound", [("at", 1)])):
    db[coll].create_index(keys)
s = time.time() - t0
print("seeded %d messages and %d replies over %d days in %.1f s: %.0f documents/s"
      % (written, replies, days, s, (written + replies) / s))
