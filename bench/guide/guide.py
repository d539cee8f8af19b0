#!/usr/bin/env python3
"""Helpers of bench/guide/run (standard library only).

  guide.py setup BASE PASSWORD TABLETS CASES OUT
      An administrator registers TABLETS tablets to shimin-1 (one admin
      session, one POST /tablets each); staff user bench01.. logs in on
      tablet NN; CASES fictional 転入 households are created and every
      question of the guide is answered.  Writes OUT/sessions (one line per
      tablet: "COOKIE<TAB>CSRF"), OUT/cases (ids), OUT/state.json (the state
      of one case, as GET returns it) and prints the state sizes.

  guide.py slip BASE OUT N
      1 + N sequential GET …/slip.pdf over one keep-alive TLS connection,
      rotating over the cases; the first (the daemon's first slip) is kept
      as OUT/slip.pdf and its ms written to OUT/slip-first-ms; prints the ms
      of each of the N others, one a line.

  guide.py peer-pdf PDF N TMPDIR
      N runs of `pdftocairo -pdf PDF out.pdf` (poppler + cairo); prints ms
      per run, one a line.

  guide.py stats
      Reads numbers (ms) from stdin; prints "n p50 p99 mean max".

Everyone here is fictional.
"""
import datetime
import http.client
import json
import os
import ssl
import statistics
import subprocess
import sys
import time

QUESTIONS_ANSWERS = {
    # the family of tests/integration/visits.sh: 16 questions asked
    "tn_shien": "no", "tn_seiho": "no", "tn_shaho": "yes", "tn_kousei": "yes",
    "tn_shougai": "no", "tn_kouki_nintei": "no", "tn_youkaigo": "no",
    "tn_jidouteate": "yes", "tn_hitorioya": "no", "tn_ninshin": "no",
    "tn_hoiku": "yes", "tn_tennyugaku": "yes", "tn_gakudou": "no",
    "tn_inkan": "yes", "tn_gentsuki": "no", "tn_inu": "no",
}
# (surname, kana) of fictional households
FAMILIES = [("山田", "ヤマダ"), ("佐藤", "サトウ"), ("鈴木", "スズキ"), ("高橋", "タカハシ"),
            ("田中", "タナカ"), ("伊藤", "イトウ"), ("渡辺", "ワタナベ"), ("中村", "ナカムラ")]
MEMBERS = [("太郎", "タロウ", 40), ("花子", "ハナコ", 38), ("一郎", "イチロウ", 7),
           ("さくら", "サクラ", 1), ("ハナ", "ハナ", 66)]


class Client:
    """One keep-alive HTTPS connection of a tablet, with its cookies."""

    def __init__(self, base):
        u = base.split("://", 1)[1].split("/", 1)[0]
        self.host, port = u.rsplit(":", 1)
        self.port = int(port)
        self.ctx = ssl.create_default_context()
        self.ctx.check_hostname = False
        self.ctx.verify_mode = ssl.CERT_NONE
        self.conn = None
        self.cookies = {}
        self.csrf = None

    def call(self, method, path, body=None, want=None):
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=60)
            headers = {}
            if self.cookies:
                headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
            if self.csrf:
                headers["X-CSRF-Token"] = self.csrf
            data = None
            if body is not None or method in ("POST", "PUT"):
                data = json.dumps(body, ensure_ascii=False).encode() if body is not None else b""
                headers["Content-Type"] = "application/json"
            try:
                self.conn.request(method, "/api/v1" + path, body=data, headers=headers)
                r = self.conn.getresponse()
                raw = r.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # an idle keep-alive connection the server closed: reconnect once
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
                continue
            for sc in r.headers.get_all("Set-Cookie") or []:
                kv = sc.split(";", 1)[0]
                k, v = kv.split("=", 1)
                if v:
                    self.cookies[k] = v
                else:
                    self.cookies.pop(k, None)
            if want is not None and r.status != want:
                sys.exit(f"guide.py: {method} {path}: {r.status} {raw[:300]!r} (wanted {want})")
            return r.status, raw
        raise AssertionError("unreachable")


def household(i, today):
    sur, skana = FAMILIES[i % len(FAMILIES)]
    addr = f"山口県周南市岐山通{i % 9 + 1}丁目{i % 20 + 1}番地 架空ハイツ{100 + i % 50}"
    people = []
    for given, gkana, age in MEMBERS:
        bd = today.replace(year=today.year - age) - datetime.timedelta(days=10 + i % 30)
        people.append({"name": f"{sur} {given}", "kana": f"{skana} {gkana}",
                       "birth_date": bd.isoformat(), "address": addr})
    return {"life_event": "tennyu", "people": people}


def setup(base, password, tablets, ncases, out):
    t0 = time.monotonic()
    admin = Client(base)
    st, raw = admin.call("POST", "/session", {"user": "admin", "password": password, "counter": "shimin-1"}, 200)
    admin.csrf = json.loads(raw)["csrf_token"]
    lines = []
    staff = []
    for n in range(1, tablets + 1):
        admin.cookies.pop("mg_tablet", None)
        admin.call("POST", "/tablets", {"counter": "shimin-1", "name": f"ベンチ用タブレット {n}"}, 201)
        tab = Client(base)
        tab.cookies["mg_tablet"] = admin.cookies["mg_tablet"]
        st, raw = tab.call("POST", "/session", {"user": f"bench{n:02d}", "password": password}, 200)
        tab.csrf = json.loads(raw)["csrf_token"]
        cookie = "; ".join(f"{k}={v}" for k, v in tab.cookies.items())
        lines.append(f"{cookie}\t{tab.csrf}\n")
        staff.append(tab)
    with open(os.path.join(out, "sessions"), "w") as f:
        f.writelines(lines)
    t1 = time.monotonic()

    today = datetime.date.today()
    ids = []
    sizes = []
    for i in range(ncases):
        tab = staff[i % len(staff)]
        st, raw = tab.call("POST", "/visits", household(i, today), 201)
        case = json.loads(raw)["case"]
        q = case["next_question"]
        n = 0
        while q is not None:
            n += 1
            if n > 40:
                sys.exit("guide.py: the guide asked more than 40 questions")
            st, raw = tab.call("PUT", f"/visits/{case['id']}/answers/{q['id']}",
                               {"answer": QUESTIONS_ANSWERS.get(q["id"], "no")}, 200)
            q = json.loads(raw)["next_question"]
        sizes.append(len(raw))
        ids.append(case["id"])
    with open(os.path.join(out, "cases"), "w") as f:
        f.write("\n".join(ids) + "\n")
    st, raw = staff[0].call("GET", f"/visits/{ids[0]}", None, 200)
    with open(os.path.join(out, "state.json"), "wb") as f:
        f.write(raw)
    t2 = time.monotonic()
    print(f"setup: {tablets} tablets registered and logged in in {t1 - t0:.1f} s; "
          f"{ncases} cases created and answered ({ncases * (len(QUESTIONS_ANSWERS) + 1)} requests) in {t2 - t1:.1f} s; "
          f"state {min(sizes)}..{max(sizes)} bytes (mean {statistics.mean(sizes):.0f})")


def slip(base, out, n):
    with open(os.path.join(out, "sessions")) as f:
        cookie, csrf = f.readline().rstrip("\n").split("\t")
    with open(os.path.join(out, "cases")) as f:
        ids = [x for x in f.read().split() if x]
    c = Client(base)
    for kv in cookie.split("; "):
        k, v = kv.split("=", 1)
        c.cookies[k] = v
    c.call("GET", "/session", None, 200)   # connect (TLS handshake) before timing
    for i in range(-1, n):
        t0 = time.perf_counter()
        st, raw = c.call("GET", f"/visits/{ids[i % len(ids)]}/slip.pdf", None, 200)
        dt = (time.perf_counter() - t0) * 1000
        if not raw.startswith(b"%PDF-"):
            sys.exit("guide.py: the slip is not a PDF")
        if i < 0:
            # the daemon's first slip (fonts are loaded then): reported apart
            with open(os.path.join(out, "slip.pdf"), "wb") as f:
                f.write(raw)
            with open(os.path.join(out, "slip-first-ms"), "w") as f:
                f.write(f"{dt:.3f}\n")
            continue
        print(f"{dt:.3f}")


def peer_pdf(pdf, n, tmp):
    dst = os.path.join(tmp, "peer-out.pdf")
    for _ in range(n):
        t0 = time.perf_counter()
        subprocess.run(["pdftocairo", "-pdf", pdf, dst], check=True)
        print(f"{(time.perf_counter() - t0) * 1000:.3f}")


def pct(v, p):
    """Nearest-rank percentile of sorted v."""
    k = max(0, min(len(v) - 1, -(-len(v) * p // 100) - 1))
    return v[int(k)]


def stats():
    v = sorted(float(x) for x in sys.stdin.read().split())
    if not v:
        sys.exit("guide.py stats: no numbers")
    print(f"{len(v)} {pct(v, 50):.2f} {pct(v, 99):.2f} {statistics.mean(v):.2f} {v[-1]:.2f}")


def main():
    a = sys.argv[1:]
    if a[:1] == ["setup"] and len(a) == 6:
        setup(a[1], a[2], int(a[3]), int(a[4]), a[5])
    elif a[:1] == ["slip"] and len(a) == 4:
        slip(a[1], a[2], int(a[3]))
    elif a[:1] == ["peer-pdf"] and len(a) == 4:
        peer_pdf(a[1], int(a[2]), a[3])
    elif a == ["stats"]:
        stats()
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
