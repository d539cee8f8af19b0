#!/usr/bin/env python3
"""bench/forms/address.sh's helper (I1): the query set and the peer.

    addrpeer.py gen CSV OUT             write the query set (seeded)
    addrpeer.py peer CSV DB QUERIES N   run it N rounds in the peer

Query file lines: "P\\t<postal code>" or "S\\t<limit>\\t<text>".

gen: postal codes sampled from the data (plain 7450004, 745-0004 and
full-width), plus codes that do not exist; texts made from sampled
addresses as staff type them: city+town in kanji, the town alone, city+town
in hiragana, and the first one and two kana of a town (search as you type),
plus a few broad ones (北海道, と, ちょう...).

peer, measured the same way as addrbench (one warm-up round, then each call
timed; p50/p99/max):
  - postal: Python's sqlite3 module on the same dictionary file, the same
    SELECT as core/address.c, answers turned into JSON;
  - search: a substring scan of the addresses held in memory (the obvious
    way without an index): the text, folded like mg_kana_key roughly
    (NFKC, hiragana to katakana, no spaces), in the kanji or the kana name,
    the first LIMIT rows, as JSON.
Output lines as addrbench's.  Standard library only.
"""
import csv
import json
import random
import sqlite3
import sys
import time
import unicodedata

BROAD = ["北海道", "ほっかいどう", "東京都", "と", "ト", "ちょう", "ひがし", "中",
         "本町", "しゅうなん"]


def hira(s):
    return "".join(chr(ord(c) - 0x60) if "ァ" <= c <= "ヶ" else c for c in s)


def kata(s):
    return "".join(chr(ord(c) + 0x60) if "ぁ" <= c <= "ゖ" else c for c in s)


def fold(s):
    s = kata(unicodedata.normalize("NFKC", s))
    return "".join(c for c in s if not c.isspace() and c not in "・･")


def load(path):
    with open(path, encoding="utf-8-sig", newline="") as f:
        return [r for r in csv.reader(f)]


def gen(csv_path, out_path):
    rows = load(csv_path)
    rnd = random.Random(20260401)
    codes = sorted({r[2] for r in rows})
    lines = []
    for i, c in enumerate(rnd.sample(codes, 1000)):
        if i % 3 == 1:
            c = c[:3] + "-" + c[3:]
        elif i % 3 == 2:
            c = "".join(chr(ord(d) + 0xFEE0) for d in c[:3]) + "－" + \
                "".join(chr(ord(d) + 0xFEE0) for d in c[3:])
        lines.append("P\t" + c)
    known = set(codes)
    while len(lines) < 1050:
        c = "%07d" % rnd.randrange(10 ** 7)
        if c not in known:
            lines.append("P\t" + c)
    towns = [r for r in rows if r[8]]
    for r in rnd.sample(towns, 200):
        lines.append("S\t20\t" + r[7] + r[8])
        lines.append("S\t20\t" + r[8])
        lines.append("S\t20\t" + hira(r[4] + r[5]))
        if r[5]:
            lines.append("S\t20\t" + hira(r[5][:1]))
            lines.append("S\t20\t" + hira(r[5][:2]))
    for q in BROAD:
        lines.append("S\t20\t" + q)
    with open(out_path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def pct(v, p):
    return v[min(len(v) - 1, int(p * (len(v) - 1) + 0.5))] if v else 0.0


def report(name, times, rows):
    times.sort()
    print("%s n=%d p50_ms=%.4f p99_ms=%.4f max_ms=%.4f rows=%d"
          % (name, len(times), pct(times, 0.5), pct(times, 0.99),
             times[-1] if times else 0.0, rows))


COLS = ("postal_code", "pref", "city", "town", "pref_kana", "city_kana",
        "town_kana", "note", "city_code")


def peer(csv_path, db_path, queries_path, rounds):
    rows = load(csv_path)
    names = [(fold(r[6] + r[7] + r[8]), fold(r[3] + r[4] + r[5]), r) for r in rows]
    db = sqlite3.connect("file:%s?mode=ro" % db_path, uri=True)
    sql = ("SELECT postal_code, pref, city, town, pref_kana, city_kana, "
           "town_kana, note, city_code FROM addr a WHERE a.postal_code = ? "
           "ORDER BY a.id")
    with open(queries_path, encoding="utf-8") as f:
        qs = [l.rstrip("\n").split("\t") for l in f if l.strip()]
    tp, ts = [], []
    rows_p = rows_s = 0
    for rnd in range(rounds + 1):
        for q in qs:
            t0 = time.perf_counter_ns()
            if q[0] == "P":
                code = unicodedata.normalize("NFKC", q[1]).replace("-", "")
                out = json.dumps([dict(zip(COLS, r)) for r in
                                  db.execute(sql, (code,))], ensure_ascii=False)
            else:
                limit, text = int(q[1]), fold(q[2])
                found = []
                for k, kk, r in names:
                    if text in k or text in kk:
                        found.append({"postal_code": r[2], "pref": r[6],
                                      "city": r[7], "town": r[8],
                                      "pref_kana": r[3], "city_kana": r[4],
                                      "town_kana": r[5]})
                        if len(found) == limit:
                            break
                out = json.dumps(found, ensure_ascii=False)
            dt = (time.perf_counter_ns() - t0) / 1e6
            if rnd == 0:
                continue
            n = out.count('"postal_code"')
            if q[0] == "P":
                tp.append(dt)
                rows_p += n
            else:
                ts.append(dt)
                rows_s += n
    report("postal", tp, rows_p)
    report("search", ts, rows_s)


def main(argv):
    if len(argv) == 4 and argv[1] == "gen":
        gen(argv[2], argv[3])
        return 0
    if len(argv) == 6 and argv[1] == "peer":
        peer(argv[2], argv[3], argv[4], int(argv[5]))
        return 0
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
