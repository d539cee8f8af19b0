#!/usr/bin/env python3
"""Draw the blank template.pdf of every form of a procedure pack.

    python3 packs/tools/make_templates.py packs/shunan [FORM_ID ...]

The ruled boxes are taken from each form's layout.csv and labelled from
fields.csv, so the blank form always agrees with where the values print.
Everything else (title, 「周南市長 あて」, 受付印, 市使用欄, notes) comes
from form.ini and the small per-form descriptions below.

Requires Python 3 and reportlab (Debian: python3-reportlab) and the IPAex
fonts (Debian: fonts-ipaexfont).
"""
import configparser
import csv
import os
import sys

from reportlab.lib.pagesizes import A4
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas

MM = 72.0 / 25.4
PAGE_W, PAGE_H = 210.0, 297.0
LEFT = 12.0          # left edge of the ruled area
MAX_LABEL = 32.0     # widest label cell drawn in front of a box

FONT_DIRS = ['/usr/share/fonts/opentype/ipaexfont-gothic', '/usr/share/fonts/opentype/ipaexfont-mincho',
             '/usr/share/fonts/truetype', '/usr/share/fonts/opentype/ipaexfont']

# Per-form description: subtitle line and notes printed under the boxes.
DESCR = {
    'jumin_idou': ('転入・転居・世帯主変更', [
        '住み始めた日から14日以内に届け出てください（住民基本台帳法第22条・第23条）。',
        '転入届には前住所地の転出証明書が必要です（マイナンバーカードによる特例転入を除きます）。',
        '世帯員が5人以上のときは、この用紙を続けてお使いください。']),
    'tenshutsu': ('転出', [
        '転出予定日の14日前から届け出ることができます。転出後の届出は転出した日から14日以内です。',
        '印鑑登録は転出により廃止されます。']),
    'kokuho_idou': ('', ['加入・脱退の届出は、事由が発生した日から14日以内に行ってください。',
                         '保険税は資格を取得した月の分からかかります。']),
    'nenkin_todoke': ('', ['基礎年金番号通知書または年金手帳をお持ちください。', '学生の方は学生納付特例を申請できます。']),
    'kouki_idou': ('山口県後期高齢者医療広域連合', ['転入の方は前住所地の負担区分等証明書を添えてください。']),
    'kaigo_idou': ('第1号被保険者', ['要介護・要支援認定を受けていた方は、転入後14日以内に受給資格証明書を提出してください。']),
    'jidouteate': ('', ['転出予定日の翌日から15日以内に請求してください（15日特例）。',
                        '請求が遅れた場合、遅れた月分の手当は支給できません。']),
    'kodomo_iryo': ('', ['受給者証は後日郵送します。']),
    'hitorioya_iryo': ('', ['所得制限があります。戸籍謄本を添えてください。']),
    'tennyugaku': ('周南市教育委員会', ['在学証明書・教科用図書給与証明書を添えてください。',
                                      '転入学通知書を指定の学校へお持ちください。']),
    'hoiku_moushikomi': ('', ['入所は毎月1日です。申込の締切は前月10日です。', '保護者の就労証明書を添えてください。']),
    'inkan_touroku': ('', ['登録は1人1個に限ります。ゴム印など変形しやすいものは登録できません。',
                          '顔写真付きの本人確認書類がない場合は、照会書による登録になります。']),
    'mynumber_henkou': ('', ['転入届の日から90日以内に手続をしないと、カードは失効します。']),
    'gentsuki': ('原動機付自転車・小型特殊自動車', ['4月1日現在の所有者に、その年度の軽自動車税（種別割）が課税されます。']),
    'inu_henkou': ('', ['変更のあった日から30日以内に届け出てください（狂犬病予防法）。']),
    'juminhyo_seikyu': ('', ['手数料 1通 300円', '代理人の請求には委任状が必要です。',
                            '個人番号・住民票コードの記載は、ご本人または同一世帯の方の請求に限ります。']),
    'inkan_shoumei': ('', ['手数料 1通 300円', '印鑑登録証（カード）がないと交付できません。']),
    'okuyami': ('', ['この申出書の内容は、各担当課の申請書の作成に使用します。']),
    'sousaihi': ('国民健康保険・後期高齢者医療', ['葬儀を行った日の翌日から2年を過ぎると申請できません。']),
    'koseki_seikyu': ('', ['戸籍証明書 1通 450円　除籍・改製原戸籍 1通 750円', '代理人の請求には委任状が必要です。']),
    'zei_shoumei': ('', ['手数料 1通 300円', '代理人の請求には委任状が必要です。']),
    'shougai_idou': ('', ['手帳・受給者証をお持ちください。']),
}


def find_font(name):
    for d in FONT_DIRS:
        p = os.path.join(d, name)
        if os.path.exists(p):
            return p
    sys.exit(f'font {name} not found; apt-get install fonts-ipaexfont')


def register_fonts():
    pdfmetrics.registerFont(TTFont('Gothic', find_font('ipaexg.ttf')))
    pdfmetrics.registerFont(TTFont('Mincho', find_font('ipaexm.ttf')))


def read_csv(path):
    with open(path, encoding='utf-8-sig', newline='') as f:
        return [r for r in csv.DictReader(f) if any((v or '').strip() for v in r.values())]


class Page:
    """Millimetre coordinates from the top-left corner."""
    def __init__(self, c):
        self.c = c

    def rect(self, x, y, w, h, lw=0.5, fill=None):
        self.c.setLineWidth(lw)
        if fill is not None:
            self.c.setFillGray(fill)
        self.c.rect(x * MM, (PAGE_H - y - h) * MM, w * MM, h * MM, stroke=1, fill=1 if fill is not None else 0)
        self.c.setFillGray(0)

    def text(self, x, y, s, size=9, font='Mincho', align='left'):
        self.c.setFont(font, size)
        yy = (PAGE_H - y) * MM
        if align == 'center':
            self.c.drawCentredString(x * MM, yy, s)
        elif align == 'right':
            self.c.drawRightString(x * MM, yy, s)
        else:
            self.c.drawString(x * MM, yy, s)

    def width(self, s, size, font='Mincho'):
        return pdfmetrics.stringWidth(s, font, size) / MM

    def fit_text(self, x, y, w, h, s, size=8, font='Mincho'):
        """Label text centred in a cell, shrunk or wrapped to fit."""
        while size > 5 and self.width(s, size, font) > w - 1.5 and size * 0.3528 * 2.3 > h:
            size -= 0.5
        if self.width(s, size, font) <= w - 1.5:
            self.text(x + w / 2, y + h / 2 + size * 0.3528 * 0.35, s, size, font, 'center')
            return
        lines, cur = [], ''
        for ch in s:
            if self.width(cur + ch, size, font) > w - 1.5:
                lines.append(cur); cur = ch
            else:
                cur += ch
        lines.append(cur)
        while size > 4.5 and len(lines) * size * 0.3528 * 1.15 > h - 0.5:
            size -= 0.5
            return self.fit_text(x, y, w, h, s, size, font)
        lh = size * 0.3528 * 1.15
        top = y + (h - lh * len(lines)) / 2 + lh * 0.8
        for i, ln in enumerate(lines):
            self.text(x + w / 2, top + i * lh, ln, size, font, 'center')


def overlaps(a, b):
    return a['y'] < b['y'] + b['h'] - 0.01 and b['y'] < a['y'] + a['h'] - 0.01


def draw_form(form_dir, out=None):
    ini = configparser.ConfigParser(inline_comment_prefixes=(';', '#'))
    with open(os.path.join(form_dir, 'form.ini'), encoding='utf-8-sig') as f:
        ini.read_file(f)
    meta = ini['form']
    form_id = os.path.basename(os.path.normpath(form_dir))
    fields = {r['id']: r for r in read_csv(os.path.join(form_dir, 'fields.csv'))}
    layout = read_csv(os.path.join(form_dir, 'layout.csv'))
    boxes = []
    for r in layout:
        b = dict(field=r['field'], row=(r.get('row') or '').strip(), page=int(r.get('page') or 1),
                 x=float(r['x']), y=float(r['y']), w=float(r['width']), h=float(r['height']))
        boxes.append(b)
    subtitle, notes = DESCR.get(form_id, ('', []))
    out = out or os.path.join(form_dir, meta.get('template', 'template.pdf'))
    c = canvas.Canvas(out, pagesize=A4)
    c.setTitle(meta.get('name', form_id)); c.setAuthor('周南市'); c.setCreator('packs/tools/make_templates.py')
    pages = int(meta.get('pages', '1'))
    for pno in range(1, pages + 1):
        pg = Page(c)
        if pno == 1:
            draw_header(pg, meta, subtitle)
        pb = [b for b in boxes if b['page'] == pno]
        for b in pb:
            if b['field'] == '@mask':
                draw_obsolete(pg, b)
        ruled = [b for b in pb if b['field'] != '@mask']
        for b in ruled:
            draw_box(pg, b, ruled, fields)
        body_bottom = max([b['y'] + b['h'] for b in ruled if b['y'] < 255] + [40])
        if pno == 1:
            y = body_bottom + 5
            if notes and y < 258:
                pg.text(LEFT, y, '【ご注意】', 8, 'Gothic')
                for i, n in enumerate(notes):
                    if y + 4 * (i + 1) > 259:
                        break
                    pg.text(LEFT + 2, y + 4 * (i + 1), '・' + n, 7.5)
            draw_office(pg, ruled, fields)
        pg.text(PAGE_W - 12, PAGE_H - 6, f'周南市　{form_id}', 6, 'Gothic', 'right')
        c.showPage()
    c.save()
    return out


def draw_header(pg, meta, subtitle):
    name = meta.get('name', '')
    size = 16
    while pg.width(name, size, 'Gothic') > 120 and size > 10:
        size -= 0.5
    pg.text(90, 17, name, size, 'Gothic', 'center')
    if subtitle:
        pg.text(90, 22.5, f'（{subtitle}）', 8.5, 'Mincho', 'center')
    pg.text(LEFT, 30.5, '（あて先）周南市長', 10.5, 'Mincho')
    # 受付印
    pg.rect(174, 6, 24, 26, lw=0.6)
    pg.rect(174, 6, 24, 5, lw=0.6, fill=0.92)
    pg.text(186, 9.7, '受付印', 7, 'Gothic', 'center')
    pg.text(LEFT, 37, '太枠の中をご記入ください（窓口のタブレットで入力した内容が印字されます）。', 7, 'Mincho')


def label_for(b, fields):
    f = b['field']
    if f == '@signature':
        return '署名', ''
    fid, _, part = f.partition('.')
    fl = fields.get(fid)
    label = fl['label'] if fl else fid
    inner = {'family': '姓', 'given': '名'}.get(part, '')
    if fl and fl.get('required', '').lower() in ('yes', 'true', '1', 'はい') and part != 'given':
        label = label + '※'
    return label, inner


def draw_box(pg, b, ruled, fields):
    label, inner = label_for(b, fields)
    fl = fields.get(b['field'].split('.')[0], {})
    grouped = bool(b['row'])
    # label cell in front of the box: from the previous box on the same band (or the left edge)
    left = LEFT
    for o in ruled:
        if o is b or not overlaps(o, b):
            continue
        r = o['x'] + o['w']
        if r <= b['x'] + 0.01 and r > left:
            left = r
    gap = b['x'] - left
    if gap > MAX_LABEL:
        left, gap = b['x'] - MAX_LABEL, MAX_LABEL
    if gap >= 6:
        pg.rect(left, b['y'], gap, b['h'], lw=0.5, fill=0.93)
        if grouped:
            pg.fit_text(left, b['y'], gap, b['h'], b['row'], 8, 'Gothic')
        else:
            pg.fit_text(left, b['y'], gap, b['h'], label, 8)
    elif not grouped and not inner:
        inner = label
    if grouped and b['row'] == '1':
        pg.rect(b['x'], b['y'] - 6, b['w'], 6, lw=0.5, fill=0.93)
        pg.fit_text(b['x'], b['y'] - 6, b['w'], 6, label, 7.5)
        if gap >= 6:
            pg.rect(left, b['y'] - 6, gap, 6, lw=0.5, fill=0.93)
    lw = 0.9 if fl.get('staff_only') != 'yes' else 0.5
    pg.rect(b['x'], b['y'], b['w'], b['h'], lw=lw)
    if inner:
        pg.text(b['x'] + 0.8, b['y'] + 2.3, inner, 5.5)
    t = fl.get('type')
    if b['field'] == '@signature':
        pg.text(b['x'] + b['w'] - 1, b['y'] + b['h'] - 1.2, '（タッチペンで署名してください）', 5.5, 'Mincho', 'right')
    elif t == 'date' and not grouped and b['w'] >= 40:
        pg.text(b['x'] + b['w'] - 1, b['y'] + b['h'] - 1, '年　　月　　日', 6.5, 'Mincho', 'right')
    elif t == 'postal_code':
        pg.text(b['x'] + 0.8, b['y'] + b['h'] - 1.2, '〒', 6.5)
    elif t == 'phone':
        pg.text(b['x'] + b['w'] - 1, b['y'] + 2.3, '日中の連絡先', 5.5, 'Mincho', 'right')
    elif fl.get('compute'):
        pg.text(b['x'] + b['w'] - 1, b['y'] + 2.3, '自動計算', 5.5, 'Mincho', 'right')


def draw_office(pg, ruled, fields):
    pg.c.setDash(2, 1.5)
    pg.c.setLineWidth(0.4)
    pg.c.line(LEFT * MM, (PAGE_H - 261) * MM, (PAGE_W - LEFT) * MM, (PAGE_H - 261) * MM)
    pg.c.setDash()
    pg.text(LEFT, 264.5, '市使用欄', 7.5, 'Gothic')
    for i, s in enumerate(['受付', '審査', '入力']):
        x = 150 + i * 16
        pg.rect(x, 264, 16, 5, lw=0.5, fill=0.93)
        pg.text(x + 8, 267.7, s, 7, 'Gothic', 'center')
        pg.rect(x, 269, 16, 15, lw=0.5)


def draw_obsolete(pg, b):
    """Old content that the layout paints white (@mask): the former 押印欄."""
    pg.rect(b['x'] + 2, b['y'] + 2, b['w'] - 4, b['h'] - 4, lw=0.5)
    pg.text(b['x'] + b['w'] / 2, b['y'] + 7, '登録する印鑑（旧様式）', 7, 'Mincho', 'center')
    cx, cy = (b['x'] + b['w'] / 2) * MM, (PAGE_H - b['y'] - b['h'] / 2 - 2) * MM
    pg.c.setLineWidth(0.4)
    pg.c.circle(cx, cy, 10 * MM)
    pg.text(b['x'] + b['w'] / 2, b['y'] + b['h'] / 2 - 0.5, '印', 12, 'Mincho', 'center')


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    pack = argv[1]
    only = set(argv[2:])
    register_fonts()
    forms = os.path.join(pack, 'forms')
    n = 0
    for fid in sorted(os.listdir(forms)):
        d = os.path.join(forms, fid)
        if not os.path.isfile(os.path.join(d, 'form.ini')) or (only and fid not in only):
            continue
        print(draw_form(d)); n += 1
    print(f'{n} templates written')


if __name__ == '__main__':
    main(sys.argv)
