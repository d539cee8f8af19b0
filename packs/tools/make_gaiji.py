#!/usr/bin/env python3
"""Draw the demo pack's 外字 font (P3): a small TrueType font whose glyphs
sit in the Private Use Area, as a city's own gaiji do.

    /usr/bin/python3 packs/tools/make_gaiji.py packs/shunan/fonts/gaiji.ttf

The glyphs are simple outlines made of strokes (rectangles), enough to show
that a value holding a private-use character prints in the pack's gaiji
font (fonts.csv role=gaiji) and not as a missing-glyph box:

    U+E000  髙 (はしご高: the ladder inside instead of 口)
    U+E001  﨑 (たつさき: 立 over 可 beside 山)
    U+E002  𠮷 (つちよし: 土 over 口)

The output is byte-for-byte reproducible (fixed timestamps), so running
this again leaves git clean.  Requires Debian's python3-fonttools (the
system python: /usr/bin/python3).
"""
import sys

from fontTools.fontBuilder import FontBuilder
from fontTools.misc.timeTools import timestampFromString
from fontTools.pens.ttGlyphPen import TTGlyphPen

UPM = 1000
ASCENT, DESCENT = 880, -120   # IPAexGothic's proportions (1802/246 of 2048)
ADVANCE = 1000                # full width, like the kanji beside them
W = 68                        # stroke width (IPAexGothic-like weight)


def hline(x0, x1, y, w=W):
    return (x0, y, x1, y + w)


def vline(x, y0, y1, w=W):
    return (x, y0, x + w, y1)


def box(x0, y0, x1, y1, w=W):
    """口: four strokes."""
    return [hline(x0, x1, y1 - w, w), hline(x0, x1, y0, w),
            vline(x0, y0, y1, w), vline(x1 - w, y0, y1, w)]


# 髙: 亠, a small 口, 冂 with the ladder (はしご) inside
TAKA = [vline(480, 760, 850), hline(100, 900, 700)] + box(300, 560, 700, 670) + [
    vline(130, -60, 500), hline(130, 870, 460), vline(830, -60, 500),
    hline(760, 870, -60),
    vline(330, 80, 380), vline(630, 80, 380),
    hline(330, 670, 340), hline(330, 670, 200), hline(330, 670, 80),
]

# 﨑: 山 on the left; 立 over 可 on the right
SAKI = [
    vline(175, 200, 720), vline(60, 200, 520), vline(290, 200, 520),
    hline(60, 330, 200),
    vline(620, 780, 860), hline(420, 900, 720),
    vline(500, 570, 690), vline(760, 570, 690), hline(400, 920, 520),
    hline(400, 920, 420), vline(820, -60, 460), hline(720, 860, -60),
] + box(440, 160, 680, 360)

# 𠮷: 土 (the lower stroke longer) over 口
YOSHI = [vline(480, 480, 850), hline(300, 700, 710), hline(130, 870, 480)] + \
    box(220, -40, 780, 400)

GLYPHS = {0xE000: ('uniE000', TAKA), 0xE001: ('uniE001', SAKI),
          0xE002: ('uniE002', YOSHI)}


def draw(rects):
    pen = TTGlyphPen(None)
    for x0, y0, x1, y1 in rects:
        # clockwise (TrueType outer contours); overlaps fill (non-zero)
        pen.moveTo((x0, y0))
        pen.lineTo((x0, y1))
        pen.lineTo((x1, y1))
        pen.lineTo((x1, y0))
        pen.closePath()
    return pen.glyph()


def main(argv):
    if len(argv) != 2:
        sys.exit(__doc__)
    out = argv[1]
    order = ['.notdef'] + [name for name, _ in GLYPHS.values()]
    fb = FontBuilder(UPM, isTTF=True)
    fb.setupGlyphOrder(order)
    fb.setupCharacterMap({cp: name for cp, (name, _) in GLYPHS.items()})
    rects = {'.notdef': box(100, -60, 900, 820, 50)}
    rects.update({name: r for name, r in GLYPHS.values()})
    fb.setupGlyf({name: draw(r) for name, r in rects.items()})
    fb.setupHorizontalMetrics({name: (ADVANCE, min(x0 for x0, _, _, _ in r))
                               for name, r in rects.items()})
    fb.setupHorizontalHeader(ascent=ASCENT, descent=DESCENT)
    fb.setupNameTable({
        'familyName': 'ShunanGaiji',
        'styleName': 'Regular',
        'uniqueFontIdentifier': 'ShunanGaiji-Regular 1.000 (madoguchi demo pack)',
        'fullName': 'ShunanGaiji Regular',
        'psName': 'ShunanGaiji-Regular',
        'version': 'Version 1.000',
        'copyright': 'Madoguchi demo pack (fictional city gaiji), drawn by packs/tools/make_gaiji.py',
    })
    fb.setupOS2(sTypoAscender=ASCENT, sTypoDescender=DESCENT, sTypoLineGap=0,
                usWinAscent=ASCENT, usWinDescent=-DESCENT,
                sxHeight=500, sCapHeight=700, fsType=0,  # installable: may be embedded
                ulUnicodeRange1=0, ulUnicodeRange2=(1 << (60 - 32)))  # bit 60: Private Use Area
    fb.setupPost()
    stamp = timestampFromString('Thu Jan  1 00:00:00 2026')
    fb.updateHead(created=stamp, modified=stamp)
    fb.font['head'].checkSumAdjustment = 0
    fb.save(out)
    print(f'{out}: {len(GLYPHS)} gaiji (U+{min(GLYPHS):04X}..U+{max(GLYPHS):04X})')


if __name__ == '__main__':
    main(sys.argv)
