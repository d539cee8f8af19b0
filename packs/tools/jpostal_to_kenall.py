#!/usr/bin/env python3
"""Convert the npm package jquery-jpostal-ja into Japan Post's
utf_ken_all.csv format (I1: the national address dictionary of the demo and
the tests; `madoctl address import` reads the result).

    jpostal_to_kenall.py PACKAGE.tgz OUT.csv

PACKAGE.tgz is what `npm pack jquery-jpostal-ja@2.14.73` downloads (the
build does it: target mg_address_data).  The package, by Ninton G.K.
(https://github.com/ninton/jquery.jpostal.js), is released under the MIT
license; this script refuses a package whose package.json says otherwise.
Its json/NNN.json files hold Japan Post's postal code data as JSONP,
one array per address:

    [ "_7450004", 都道府県, 市区町村, 町域, 番地, 事業所名,
      都道府県カナ, 市区町村カナ, 町域カナ ]   (kana half-width)

Output: UTF-8 without BOM, LF line ends, one address a line, the 15
columns of utf_ken_all.csv, text columns in double quotes:

     1 全国地方公共団体コード  "00000": the package does not carry it
                              (madoguchid shows it as "")
     2 (旧)郵便番号           the first three digits and two spaces
                              ("745  "), what KEN_ALL has for many codes
                              (the package does not carry it either)
     3 郵便番号               7 digits
     4-6 カナ                 full-width katakana, as utf_ken_all has them
                              (NFKC of the package's half-width kana)
     7-9 漢字                 as in the package
    10 一町域が二以上の郵便番号  1 when the same 都道府県+市区町村+町域 has
                              several codes in the data, else 0
    11 小字毎に番地が起番       0 (not in the package)
    12 丁目を有する町域         0 (not in the package)
    13 一つの郵便番号で二以上の町域  1 when the code has several rows, else 0
    14 更新の表示              0
    15 変更理由                0

What the package already did to Japan Post's data, so it is not in the
output: towns split over several lines are joined; 「以下に掲載がない場合」
and the 「○○の次に番地がくる場合」 phrases are blank towns; bracket remarks
(「（１〜１９丁目）」, 「（次のビルを除く）」, floors 「（１階）」) are removed
or merged into the town (霞が関霞が関ビル１階).  Business codes
(事業所の個別郵便番号: rows with a 番地 or 事業所名) are not addresses of
KEN_ALL and are left out, as are the package's three-digit index rows.
Rows keep the package's order (by postal code).

Python 3 standard library only.
"""
import collections
import json
import os
import re
import sys
import tarfile
import unicodedata

JSONP = re.compile(r"^\s*jQuery_jpostal_callback\(\s*(.*)\s*\)\s*;?\s*$", re.S)
DATA_FILE = re.compile(r"^package/json/(\d{3})\.json$")


def fail(msg):
    sys.stderr.write("jpostal_to_kenall: %s\n" % msg)
    sys.exit(1)


def read_package(path):
    """The license and every data row of the tarball, in file order."""
    rows = []
    try:
        tar = tarfile.open(path, "r:gz")
    except (OSError, tarfile.TarError) as e:
        fail("%s: not a readable npm package: %s" % (path, e))
    with tar:
        names = sorted(m.name for m in tar.getmembers() if m.isfile())
        if "package/package.json" not in names:
            fail("%s: no package/package.json (not an npm package)" % path)
        meta = json.loads(tar.extractfile("package/package.json").read())
        if meta.get("name") != "jquery-jpostal-ja":
            fail("%s: package %r, expected jquery-jpostal-ja" % (path, meta.get("name")))
        if meta.get("license") != "MIT":
            fail("%s: license %r, expected MIT; refusing to use the data"
                 % (path, meta.get("license")))
        data = [n for n in names if DATA_FILE.match(n)]
        if len(data) < 900:
            fail("%s: only %d data files under package/json/" % (path, len(data)))
        for name in data:
            text = tar.extractfile(name).read().decode("utf-8")
            m = JSONP.match(text)
            if not m:
                fail("%s: %s is not jQuery_jpostal_callback(...)" % (path, name))
            for i, r in enumerate(json.loads(m.group(1))):
                if not isinstance(r, list) or len(r) != 9 or not all(
                        isinstance(c, str) for c in r):
                    fail("%s: %s: row %d is not 9 strings" % (path, name, i + 1))
                rows.append((name, r))
    return meta, rows


def kana(s):
    # half-width katakana (ｶﾞ) to full-width (ガ), as utf_ken_all has it
    return unicodedata.normalize("NFKC", s)


def quote(s):
    return '"%s"' % s.replace('"', '""')


def main(argv):
    if len(argv) != 3:
        sys.stderr.write("usage: jpostal_to_kenall.py PACKAGE.tgz OUT.csv\n")
        return 2
    src, dst = argv[1], argv[2]
    meta, raw = read_package(src)
    rows = []
    for name, r in raw:
        code = r[0]
        if code == "_000info" or (code.startswith("_") and len(code) == 4):
            continue  # the data's version and the three-digit index rows
        if r[4] or r[5]:
            continue  # a business code (番地, 事業所名)
        if len(code) != 8 or not code.startswith("_") or not code[1:].isdigit():
            fail("%s: %s: postal code %r is not 7 digits" % (src, name, code))
        if not r[1] or not r[2]:
            fail("%s: %s: %s has no prefecture or city" % (src, name, code))
        rows.append(r)
    if len(rows) < 100000:
        fail("%s: only %d addresses; the national data has about 124,000" % (src, len(rows)))
    per_code = collections.Counter(r[0] for r in rows)
    codes_of_town = collections.defaultdict(set)
    for r in rows:
        codes_of_town[(r[1], r[2], r[3])].add(r[0])
    out = []
    for r in rows:
        code = r[0][1:]
        cells = [
            "00000",
            quote(code[:3] + "  "),
            quote(code),
            quote(kana(r[6])), quote(kana(r[7])), quote(kana(r[8])),
            quote(r[1]), quote(r[2]), quote(r[3]),
            "1" if len(codes_of_town[(r[1], r[2], r[3])]) > 1 else "0",
            "0", "0",
            "1" if per_code[r[0]] > 1 else "0",
            "0", "0",
        ]
        out.append(",".join(cells) + "\n")
    tmp = dst + ".part"
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        f.writelines(out)
    os.replace(tmp, dst)
    sys.stdout.write("jpostal_to_kenall: %d addresses from %s %s (%s license) -> %s\n"
                     % (len(out), meta.get("name"), meta.get("version"),
                        meta.get("license"), dst))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
