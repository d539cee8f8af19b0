"""Watch a city's applications in PostgreSQL (bench/sync): every few ms,
through one long-lived psql (no Python driver needed), note the first time
each application id is seen committed.

  seen.py CITY OUT [--interval-ms 5]

Writes "ID UNIX_TIME" lines to OUT until it gets SIGTERM.  Commits are
visible only after COMMIT, so a time here is at most one interval after the
tenant's commit."""
import os, signal, subprocess, sys, time

city, outp = sys.argv[1], sys.argv[2]
iv = 0.005
if "--interval-ms" in sys.argv:
    iv = float(sys.argv[sys.argv.index("--interval-ms") + 1]) / 1000
p = subprocess.Popen(["psql", "-qAtX"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                     text=True, bufsize=1)
seen = set()
out = open(outp, "w", buffering=1)
stop = [False]
signal.signal(signal.SIGTERM, lambda *a: stop.__setitem__(0, True))
q = f"SELECT id FROM city_{city}.applications;\n\\echo --end--\n"
while not stop[0]:
    p.stdin.write(q)
    t = None
    while True:
        line = p.stdout.readline()
        if not line:
            sys.exit("seen.py: psql ended")
        line = line.strip()
        if line == "--end--":
            break
        if line and line not in seen:
            if t is None:
                t = time.time()
            seen.add(line)
            out.write(f"{line} {t:.6f}\n")
    time.sleep(iv)
p.stdin.close()
