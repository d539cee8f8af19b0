/*
 * test_slip.c — the guide slip (core/slip.h) read back the way a person
 * and a counter scanner read it: the text through pdftotext, the fonts
 * through pdffonts, and page 1 rasterised at 150 dpi and decoded by zbarimg
 * (the QR code and the Code 128 barcode both).  The family is fictional.
 */
#include <fontconfig/fontconfig.h>
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cairo.h>
#include <cmocka.h>

#include "render_test.h"

#include "slip.h"

#define IPAEX "/usr/share/fonts/opentype/ipaexfont-gothic/ipaexg.ttf"
#define NUMBER "20481357"
#define SHOWN "2048-1357"
#define PAYLOAD "MG1:JgGsVWL5VJeNTCJ9McRPLmR3PUfRWD77Jqx_qrOP0Xs"

static const char *const DOCS_MOVE[] = {
    "前住所地の市区町村が発行した転出証明書（マイナンバーカードで転出した方は不要）",
    "届出人の本人確認書類（マイナンバーカード、運転免許証、パスポートなど顔写真付きのもの1点）",
    "世帯全員分のマイナンバーカードまたは通知カード",
    "代理人が届け出る場合は委任状と代理人の本人確認書類",
    "外国籍の方は在留カードまたは特別永住者証明書"};
static const char *const DOCS_CARD[] = {
    "マイナンバーカード（世帯全員分）",
    "各カードの暗証番号（数字4桁の利用者証明用と券面事項入力補助用、英数字6〜16文字の署名用）"};
static const char *const DOCS_NHI[] = {
    "前住所地の国民健康保険資格喪失の確認ができるもの（資格確認書など）",
    "世帯主と加入する方のマイナンバーが分かるもの",
    "届出人の本人確認書類",
    "口座振替を希望する方は通帳と届出印"};
static const char *const DOCS_CHILD[] = {
    "請求者（父または母のうち所得の高い方）の健康保険の資格が分かるもの",
    "請求者名義の預金通帳またはキャッシュカード",
    "請求者と配偶者のマイナンバーが分かるもの",
    "別居している児童がいる場合は別居監護申立書"};
static const char *const DOCS_SCHOOL[] = {
    "前の学校が発行した在学証明書と教科用図書給与証明書",
    "転入届を出したあとに市民課で受け取る転入学通知書"};
static const char *const DOCS_SEAL[] = {"登録する印鑑（ゴム印・変形しやすい印鑑は不可）",
                                        "本人確認書類（顔写真付きのもの）"};
static const char *const DOCS_PET[] = {"犬の鑑札", "狂犬病予防注射済票"};

static const struct mg_slip_item ITEMS[] = {
    {"転入届", 0, "市民課 1番窓口（転入・転出・転居）", "1F",
     "番号札を取ってお待ちください。", DOCS_MOVE, 5,
     "世帯全員分をまとめて届け出できます。", "住み始めた日から14日以内",
     "山田 太郎、山田 花子、山田 一郎", "done"},
    {"マイナンバーカードの住所変更", 0, "市民課 2番窓口（マイナンバー）", "1F", "",
     DOCS_CARD, 2, "", "転入届の日から90日以内", "山田 太郎、山田 花子",
     "in_progress"},
    {"国民健康保険の加入", 0, "保険年金課 5番窓口", "1F", "", DOCS_NHI, 4,
     "会社の健康保険に加入している方は手続き不要です。",
     "転入した日から14日以内", "", "pending"},
    {"国民年金の住所変更", 0, "保険年金課 6番窓口", "1F", "", NULL, 0,
     "マイナンバーと基礎年金番号が結び付いている方は届出不要です。", "", "山田 花子",
     "pending"},
    {"児童手当の認定請求", 0, "こども家庭課 12番窓口", "2F",
     "2階へはエレベーターをご利用ください。", DOCS_CHILD, 4,
     "申請した月の翌月分から支給されます。遅れると遡って受け取れません。",
     "転入した日の翌日から15日以内", "山田 一郎", "pending"},
    {"子ども医療費助成の申請", 0, "こども家庭課 12番窓口", "2F", "", DOCS_CHILD, 2,
     "", "", "山田 一郎", "pending"},
    {"小学校の転入学", 0, "学校教育課 20番窓口", "3F", "", DOCS_SCHOOL, 2,
     "通学する学校は住所で決まります。", "", "山田 一郎", "pending"},
    {"印鑑登録", 0, "市民課 3番窓口（証明）", "1F", "", DOCS_SEAL, 2,
     "代理人による申請は後日の照会になります。", "", "山田 太郎", "pending"},
    {"犬の登録事項の変更", 0, "環境政策課 31番窓口", "3F", "", DOCS_PET, 2, "",
     "30日以内", "", "pending"},
    {"水道の使用開始", 1, "上下水道局 お客様センター", "",
     "電話またはインターネットでお申し込みください（窓口ではありません）。", NULL, 0,
     "", "", "", "pending"},
    {"ごみの出し方と収集日", 1, "ごみ減量推進課 32番窓口", "3F", "", NULL, 0,
     "地区ごとの収集カレンダーをお渡しします。", "", "", "pending"},
    {"乳幼児健診と予防接種のご案内", 1, "健康づくり推進課", "別館1F", "", NULL, 0,
     "母子健康手帳をお持ちの方は健診の予定をご確認ください。", "", "山田 一郎",
     "pending"},
    {"原動機付自転車の登録", 0, "税務課 15番窓口", "2F", "", DOCS_SEAL, 2,
     "前の市区町村のナンバープレートを返納してください。", "", "山田 太郎",
     "pending"},
};
#define N_ITEMS (sizeof(ITEMS) / sizeof(ITEMS[0]))

static struct mg_slip family(void) {
  struct mg_slip s = {
      .city = "周南市 窓口手続パック",
      .title = "転入（市外から引っ越してきた）",
      .number = NUMBER,
      .qr_payload = PAYLOAD,
      .issued_at = "2026年11月25日 10:32",
      .counter = "市民課 1番窓口",
      .resident = "山田 太郎 様（ほか2名）",
      .address = "山口県周南市岐山通1丁目1番地",
      .free_text = "児童手当は本日中に申請してください。\n"
                   "印鑑登録は来週の火曜日に照会書をお持ちください。",
      .items = ITEMS,
      .n_items = N_ITEMS,
      .font_file = NULL,
  };
  return s;
}

struct fx {
  char dir[64];
};

static int setup(void **state) {
  struct fx *f = calloc(1, sizeof(*f));
  snprintf(f->dir, sizeof(f->dir), "/tmp/mg-slip.XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  *state = f;
  return 0;
}

static int teardown(void **state) {
  struct fx *f = *state;
  assert_int_equal(rt_rm_rf(f->dir), 0);
  free(f);
  return 0;
}

/* Render `s` into dir/name; returns the page count. */
static void render_to(const struct mg_slip *s, const char *dir,
                      const char *name) {
  unsigned char *pdf = NULL;
  size_t len = 0;
  struct mg_err err = {{0}};
  int rc = mg_slip_render(s, &pdf, &len, &err);
  if (rc)
    fail_msg("render: %d %s", rc, err.msg);
  assert_true(len > 1000);
  assert_memory_equal(pdf, "%PDF-", 5);
  rt_write_file(dir, name, pdf, len);
  free(pdf);
}

/* The font is embedded (pdffonts' "emb" column) and is IPAex Gothic. */
static void assert_embedded(const char *dir, const char *name) {
  char *fonts = rt_run("pdffonts '%s/%s'", dir, name);
  int found = 0;
  for (char *line = strtok(fonts, "\n"); line; line = strtok(NULL, "\n"))
    if (strstr(line, "IPAexGothic")) {
      assert_non_null(strstr(line, " yes "));
      found = 1;
    }
  if (!found)
    fail_msg("no IPAexGothic in pdffonts output");
  free(fonts);
}

/* zbarimg prints one line per symbol found. */
static int has_line(const char *text, const char *want) {
  size_t n = strlen(want);
  for (const char *p = text; (p = strstr(p, want)); p += n)
    if ((p == text || p[-1] == '\n') && (p[n] == '\n' || p[n] == 0))
      return 1;
  return 0;
}

static void test_family(void **state) {
  struct fx *f = *state;
  struct mg_slip s = family();
  render_to(&s, f->dir, "slip.pdf");
  int pages = rt_pdf_pages(f->dir, "slip.pdf");
  assert_true(pages >= 2);

  char *text = rt_run("pdftotext -layout '%s/slip.pdf' -", f->dir);
  for (size_t i = 0; i < N_ITEMS; i++)
    if (!strstr(text, ITEMS[i].name))
      fail_msg("item %s missing from the text", ITEMS[i].name);
  const char *want[] = {"ご案内票", "受付番号", SHOWN, "転入（市外から引っ越してきた）",
                        "山田 太郎 様", "周南市岐山通1丁目1番地", "持ち物", "期限",
                        "住み始めた日から14日以内", "世帯全員分のマイナンバーカード",
                        "職員からのメモ", "照会書をお持ちください",
                        "この票を次の窓口でお見せください", "1F 市民課 1番窓口",
                        "ご案内", "済", "別館1F 健康づくり推進課"};
  for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
    if (!strstr(text, want[i]))
      fail_msg("\"%s\" missing from the text", want[i]);
  /* the number and "n/N ページ" on every page (pages are split by \f) */
  int seen = 0;
  for (char *pg = text; pg && *pg; seen++) {
    char *end = strchr(pg, '\f');
    if (end)
      *end = 0;
    char pn[32];
    snprintf(pn, sizeof(pn), "%d/%d ページ", seen + 1, pages);
    if (!strstr(pg, SHOWN) || !strstr(pg, pn))
      fail_msg("page %d lacks the number or \"%s\"", seen + 1, pn);
    pg = end ? end + 1 : NULL;
  }
  assert_int_equal(seen, pages);
  free(text);

  assert_embedded(f->dir, "slip.pdf");

  free(rt_run("pdftoppm -r 150 -png -f 1 -l 1 -singlefile '%s/slip.pdf' "
              "'%s/page1'",
              f->dir, f->dir));
  char *codes = rt_run("zbarimg --raw -q '%s/page1.png' 2>/dev/null", f->dir);
  if (!has_line(codes, PAYLOAD) || !has_line(codes, NUMBER))
    fail_msg("zbarimg read:\n%s", codes);
  free(codes);
}

static void expect_einval(const struct mg_slip *s, const char *why) {
  unsigned char *pdf = (unsigned char *)"x";
  size_t len = 7;
  struct mg_err err = {{0}};
  int rc = mg_slip_render(s, &pdf, &len, &err);
  if (rc != -EINVAL)
    fail_msg("%s: got %d, want -EINVAL", why, rc);
  assert_null(pdf);
  assert_int_equal(len, 0);
  assert_true(strlen(err.msg) > 10);
}

static void test_bad_input(void **state) {
  (void)state;
  struct mg_slip s = family();
  unsigned char *pdf = NULL;
  size_t len = 0;
  struct mg_err err = {{0}};
  char big[600];

  expect_einval(NULL, "NULL slip");
  assert_int_equal(mg_slip_render(&s, NULL, &len, &err), -EINVAL);
  assert_int_equal(mg_slip_render(&s, &pdf, NULL, &err), -EINVAL);
  const char *numbers[] = {NULL, "", "1234567", "123456789", "1234567a",
                           "1234-567", " 12345678"};
  for (size_t i = 0; i < sizeof(numbers) / sizeof(numbers[0]); i++) {
    s = family();
    s.number = numbers[i];
    expect_einval(&s, "bad number");
  }
  s = family();
  s.qr_payload = NULL;
  expect_einval(&s, "NULL payload");
  s.qr_payload = "";
  expect_einval(&s, "empty payload");
  s.qr_payload = "MG1:abc\ndef";
  expect_einval(&s, "control character in payload");
  memset(big, 'A', sizeof(big));
  big[513] = 0;
  s.qr_payload = big;
  expect_einval(&s, "payload of 513 bytes");
  assert_non_null(strstr(err.msg, "") ); /* (err checked in expect_einval) */
  s = family();
  s.n_items = 3;
  s.items = NULL;
  expect_einval(&s, "items NULL");
  s = family();
  s.resident = "\xE5\xB1"; /* truncated UTF-8 */
  expect_einval(&s, "bad UTF-8");
  struct mg_slip_item it = ITEMS[0];
  it.n_documents = 2;
  it.documents = NULL;
  s = family();
  s.items = &it;
  s.n_items = 1;
  expect_einval(&s, "documents NULL");

  /* 512 bytes is the limit and still a readable QR code */
  s = family();
  big[512] = 0;
  s.qr_payload = big;
  assert_int_equal(mg_slip_render(&s, &pdf, &len, &err), 0);
  assert_non_null(pdf);
  free(pdf);
}

static void test_font_file(void **state) {
  struct fx *f = *state;
  struct mg_slip s = family();
  unsigned char *pdf = (unsigned char *)"x";
  size_t len = 0;
  struct mg_err err = {{0}};

  s.font_file = IPAEX;
  render_to(&s, f->dir, "file.pdf");
  assert_embedded(f->dir, "file.pdf");
  char *text = rt_run("pdftotext -layout '%s/file.pdf' -", f->dir);
  assert_non_null(strstr(text, "児童手当の認定請求"));
  assert_non_null(strstr(text, SHOWN));
  free(text);
  render_to(&s, f->dir, "file2.pdf"); /* from this thread's cache */

  s.font_file = "/nonexistent/ipaexg.ttf";
  assert_int_equal(mg_slip_render(&s, &pdf, &len, &err), -ENOENT);
  assert_null(pdf);
  assert_non_null(strstr(err.msg, "/nonexistent/ipaexg.ttf"));
  s.font_file = MG_TEST_SOURCE_DIR "/README.md";
  assert_int_equal(mg_slip_render(&s, &pdf, &len, &err), -EINVAL);
  assert_non_null(strstr(err.msg, "not a font"));
  s.font_file = MG_TEST_SOURCE_DIR;
  assert_int_equal(mg_slip_render(&s, &pdf, &len, &err), -EINVAL);
}

static void test_empty(void **state) {
  struct fx *f = *state;
  struct mg_slip s = {.number = "00000001", .qr_payload = "MG1:x",
                      .city = "", .title = "", .issued_at = "", .counter = "",
                      .resident = "", .address = "", .free_text = ""};
  render_to(&s, f->dir, "empty.pdf");
  assert_int_equal(rt_pdf_pages(f->dir, "empty.pdf"), 1);
  char *text = rt_run("pdftotext -layout '%s/empty.pdf' -", f->dir);
  assert_non_null(strstr(text, "受付番号"));
  assert_non_null(strstr(text, "0000-0001"));
  assert_null(strstr(text, "職員からのメモ"));
  assert_null(strstr(text, "お名前"));
  free(text);
  /* NULL optional strings print nothing, as "" does */
  struct mg_slip_item it = {.name = "転出届", .status = NULL};
  struct mg_slip n = {.number = "00000002", .qr_payload = "MG1:y",
                      .items = &it, .n_items = 1};
  render_to(&n, f->dir, "nulls.pdf");
  text = rt_run("pdftotext -layout '%s/nulls.pdf' -", f->dir);
  assert_non_null(strstr(text, "転出届"));
  assert_null(strstr(text, "持ち物"));
  free(text);
}

/* An item longer than a page breaks between its rows; a memo longer than
 * a page is cut (with "…") instead of running off the paper. */
static void test_long(void **state) {
  struct fx *f = *state;
  static char docs[150][32];
  const char *dp[150];
  for (int i = 0; i < 150; i++) {
    snprintf(docs[i], sizeof(docs[i]), "書類その%d", i + 1);
    dp[i] = docs[i];
  }
  struct mg_slip_item it[2] = {ITEMS[0], ITEMS[1]};
  it[1].documents = dp;
  it[1].n_documents = 150;
  size_t memo_len = 3 * 20000;
  char *memo = malloc(memo_len + 1);
  assert_non_null(memo);
  for (size_t i = 0; i < memo_len; i += 3)
    memcpy(memo + i, "あ", 3);
  memo[memo_len] = 0;
  struct mg_slip s = family();
  s.items = it;
  s.n_items = 2;
  s.free_text = memo;
  render_to(&s, f->dir, "long.pdf");
  free(memo);
  int pages = rt_pdf_pages(f->dir, "long.pdf");
  assert_true(pages >= 4 && pages <= 6);
  char *text = rt_run("pdftotext -layout '%s/long.pdf' -", f->dir);
  assert_non_null(strstr(text, "書類その1\n"));
  assert_non_null(strstr(text, "書類その150"));
  char pn[32];
  snprintf(pn, sizeof(pn), "%d/%d ページ", pages, pages);
  assert_non_null(strstr(text, pn));
  free(text);
  /* the memo is cut, not run off the page: none of it below 790 pt
   * (279 mm), where only the footer is */
  text =
      rt_run("pdftotext -f %d -l %d -x 0 -y 100 -W 596 -H 500 '%s/long.pdf' -",
             pages, pages, f->dir);
  assert_non_null(strstr(text, "ああ"));
  free(text);
  text =
      rt_run("pdftotext -f %d -l %d -x 0 -y 790 -W 596 -H 52 '%s/long.pdf' -",
             pages, pages, f->dir);
  assert_null(strstr(text, "あ"));
  assert_non_null(strstr(text, pn));
  free(text);
}

/* Several uv workers at once, each with its own font maps, which go when
 * the thread ends (LSan would report them otherwise). */
static void *worker(void *arg) {
  long k = (long)arg;
  struct mg_slip s = family();
  struct mg_err err = {{0}};
  for (int i = 0; i < 3; i++) {
    unsigned char *pdf = NULL;
    size_t len = 0;
    s.font_file = (k + i) % 2 ? IPAEX : NULL;
    if (mg_slip_render(&s, &pdf, &len, &err) != 0 || len < 1000 ||
        memcmp(pdf, "%PDF-", 5) != 0 || memcmp(pdf + len - 6, "%%EOF", 5) != 0)
      return (void *)1;
    free(pdf);
  }
  return NULL;
}

static void test_threads(void **state) {
  (void)state;
  pthread_t t[4];
  for (long i = 0; i < 4; i++)
    assert_int_equal(pthread_create(&t[i], NULL, worker, (void *)i), 0);
  for (int i = 0; i < 4; i++) {
    void *res = (void *)1;
    assert_int_equal(pthread_join(t[i], &res), 0);
    assert_null(res);
  }
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Not an assertion (machines differ); the target is under 50 ms. */
static void test_timing(void **state) {
  (void)state;
  struct mg_slip s = family();
  struct mg_err err = {{0}};
  double t0 = now_ms();
  for (int i = 0; i < 20; i++) {
    unsigned char *pdf = NULL;
    size_t len = 0;
    assert_int_equal(mg_slip_render(&s, &pdf, &len, &err), 0);
    free(pdf);
  }
  printf("slip: %.1f ms per slip (%zu items, 20 renders)\n",
         (now_ms() - t0) / 20, N_ITEMS);
}

static void *suite(void *arg) {
  const struct CMUnitTest tests[] = {
      /* first: font_file as the process's first render (pango registers
       * its font map types lazily) */
      cmocka_unit_test_setup_teardown(test_font_file, setup, teardown),
      cmocka_unit_test_setup_teardown(test_family, setup, teardown),
      cmocka_unit_test(test_bad_input),
      cmocka_unit_test_setup_teardown(test_long, setup, teardown),
      cmocka_unit_test_setup_teardown(test_empty, setup, teardown),
      cmocka_unit_test(test_threads),
      cmocka_unit_test(test_timing),
  };
  *(int *)arg = cmocka_run_group_tests(tests, NULL, NULL);
  return NULL;
}

int main(void) { return rt_main(suite); }
