#!/usr/bin/env python3
"""Scale the demo pack for bench/pack: copy packs/shunan to OUT with its forms
repeated up to FORMS and procedures.csv grown to PROCEDURES rows, all valid
(ids unique, references intact).  Usage: scale.py SRC OUT FORMS PROCEDURES"""
import csv, io, os, shutil, sys

src, out, n_forms, n_procs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
shutil.copytree(src, out)
forms = sorted(os.listdir(os.path.join(out, "forms")))
i = 0
while len(os.listdir(os.path.join(out, "forms"))) < n_forms:
    base = forms[i % len(forms)]
    shutil.copytree(os.path.join(out, "forms", base),
                    os.path.join(out, "forms", f"{base}-{i // len(forms) + 2}"))
    i += 1
all_forms = sorted(os.listdir(os.path.join(out, "forms")))

path = os.path.join(out, "procedures.csv")
with open(path, encoding="utf-8", newline="") as f:
    rows = list(csv.DictReader(f))
    fields = list(rows[0].keys())
base = list(rows)
k = 0
while len(rows) < n_procs:
    r = dict(base[k % len(base)])
    r["id"] = f"{r['id']}-x{k}"
    if r.get("kind", "form") != "info":
        r["forms"] = all_forms[k % len(all_forms)]
    rows.append(r)
    k += 1
buf = io.StringIO()
w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
w.writeheader()
w.writerows(rows)
with open(path, "w", encoding="utf-8", newline="") as f:
    f.write(buf.getvalue())
print(f"{out}: {len(all_forms)} forms, {len(rows)} procedures")
