/*
 * test_address.c — the national address dictionary (I1, core/address.h):
 * a hand-written KEN_ALL sample with each of Japan Post's quirks, imported
 * as Shift_JIS (made with iconv here) and as UTF-8; lookups by postal code
 * and searches in kanji and kana; malformed lines refused with FILE:LINE
 * and the rule; a failed import leaves the old dictionary answering.
 * Places are real (that is the data); no person appears.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* mkdtemp */
#endif
#include <errno.h>
#include <iconv.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "address.h"
#include "buf.h"
#include "json.h"

/* The classic KEN_ALL.CSV (half-width kana, towns split over lines),
 * written here in UTF-8 and converted to CP932 by the tests. */
static const char KEN_ALL[] =
    /* 1: the whole city: 以下に掲載がない場合 */
    "35215,\"745  \",\"7450000\",\"ﾔﾏｸﾞﾁｹﾝ\",\"ｼｭｳﾅﾝｼ\",\"ｲｶﾆｹｲｻｲｶﾞﾅｲﾊﾞｱｲ\","
    "\"山口県\",\"周南市\",\"以下に掲載がない場合\",0,0,0,0,0,0\r\n"
    /* 2 */
    "35215,\"745  \",\"7450004\",\"ﾔﾏｸﾞﾁｹﾝ\",\"ｼｭｳﾅﾝｼ\",\"ﾓｳﾘﾏﾁ\","
    "\"山口県\",\"周南市\",\"毛利町\",0,0,1,0,0,0\r\n"
    /* 3-4: a town split over two lines, kana too */
    "01101,\"064  \",\"0640941\",\"ﾎｯｶｲﾄﾞｳ\",\"ｻｯﾎﾟﾛｼﾁｭｳｵｳｸ\",\"ｱｻﾋｶﾞｵｶ(1ﾁｮｳﾒ\","
    "\"北海道\",\"札幌市中央区\",\"旭ケ丘（１丁目\",0,0,1,0,0,0\r\n"
    "01101,\"064  \",\"0640941\",\"ﾎｯｶｲﾄﾞｳ\",\"ｻｯﾎﾟﾛｼﾁｭｳｵｳｸ\",\"-5ﾁｮｳﾒ)\","
    "\"北海道\",\"札幌市中央区\",\"〜５丁目）\",0,0,1,0,0,0\r\n"
    /* 5: a bracketed range */
    "01101,\"060  \",\"0600042\",\"ﾎｯｶｲﾄﾞｳ\",\"ｻｯﾎﾟﾛｼﾁｭｳｵｳｸ\","
    "\"ｵｵﾄﾞｵﾘﾆｼ(1-19ﾁｮｳﾒ)\",\"北海道\",\"札幌市中央区\",\"大通西（１〜１９丁目）\","
    "1,0,1,0,0,0\r\n"
    /* 6-8: 次のビルを除く and a high-rise's floors */
    "13101,\"100  \",\"1000005\",\"ﾄｳｷｮｳﾄ\",\"ﾁﾖﾀﾞｸ\",\"ﾏﾙﾉｳﾁ(ﾂｷﾞﾉﾋﾞﾙｦﾉｿﾞｸ)\","
    "\"東京都\",\"千代田区\",\"丸の内（次のビルを除く）\",0,0,1,0,0,0\r\n"
    "13101,\"100  \",\"1006090\",\"ﾄｳｷｮｳﾄ\",\"ﾁﾖﾀﾞｸ\","
    "\"ｶｽﾐｶﾞｾｷｶｽﾐｶﾞｾｷﾋﾞﾙ(ﾁｶｲ･ｶｲｿｳﾌﾒｲ)\",\"東京都\",\"千代田区\","
    "\"霞が関霞が関ビル（地階・階層不明）\",0,0,0,0,0,0\r\n"
    "13101,\"100  \",\"1006001\",\"ﾄｳｷｮｳﾄ\",\"ﾁﾖﾀﾞｸ\",\"ｶｽﾐｶﾞｾｷｶｽﾐｶﾞｾｷﾋﾞﾙ(1ｶｲ)\","
    "\"東京都\",\"千代田区\",\"霞が関霞が関ビル（１階）\",0,0,0,0,0,0\r\n"
    /* 9: a city's 一円 (the whole town); 10: 一円, a real town */
    "13308,\"100  \",\"1001101\",\"ﾄｳｷｮｳﾄ\",\"ﾐﾔｹｼﾞﾏﾐﾔｹﾑﾗ\",\"ﾐﾔｹﾑﾗｲﾁｴﾝ\","
    "\"東京都\",\"三宅島三宅村\",\"三宅村一円\",0,0,0,0,0,0\r\n"
    "25443,\"52203\",\"5220317\",\"ｼｶﾞｹﾝ\",\"ｲﾇｶﾐｸﾞﾝﾀｶﾞﾁｮｳ\",\"ｲﾁｴﾝ\","
    "\"滋賀県\",\"犬上郡多賀町\",\"一円\",0,0,0,0,0,0\r\n"
    /* 11: 次に番地がくる場合 */
    "08546,\"30604\",\"3060433\",\"ｲﾊﾞﾗｷｹﾝ\",\"ｻｼﾏｸﾞﾝｻｶｲﾏﾁ\","
    "\"ｻｶｲﾏﾁﾉﾂｷﾞﾆﾊﾞﾝﾁｶﾞｸﾙﾊﾞｱｲ\",\"茨城県\",\"猿島郡境町\","
    "\"境町の次に番地がくる場合\",0,0,0,0,0,0\r\n"
    /* 12-13: one code, two prefectures */
    "23235,\"498  \",\"4980000\",\"ｱｲﾁｹﾝ\",\"ﾔﾄﾐｼ\",\"ｲｶﾆｹｲｻｲｶﾞﾅｲﾊﾞｱｲ\","
    "\"愛知県\",\"弥富市\",\"以下に掲載がない場合\",0,0,0,1,0,0\r\n"
    "24303,\"498  \",\"4980000\",\"ﾐｴｹﾝ\",\"ｸﾜﾅｸﾞﾝｷｿｻｷﾁｮｳ\",\"ｲｶﾆｹｲｻｲｶﾞﾅｲﾊﾞｱｲ\","
    "\"三重県\",\"桑名郡木曽岬町\",\"以下に掲載がない場合\",0,0,0,1,0,0\r\n"
    /* 14: a CP932 extension (IBM 髙) */
    "35215,\"745  \",\"7450877\",\"ﾔﾏｸﾞﾁｹﾝ\",\"ｼｭｳﾅﾝｼ\",\"ﾀｶﾀﾞｲ\","
    "\"山口県\",\"周南市\",\"髙台\",0,0,0,0,0,0\r\n";
#define KEN_ALL_ROWS 13 /* 14 lines, one town over two */

/* The UTF-8 utf_ken_all.csv: one line a record, full-width kana, a BOM;
 * a fictional town in 周南市 and another 毛利町 elsewhere. */
static const char UTF_KEN_ALL[] =
    "\xEF\xBB\xBF"
    "35215,\"745  \",\"7450004\",\"ヤマグチケン\",\"シュウナンシ\",\"モウリマチ\","
    "\"山口県\",\"周南市\",\"毛利町\",0,0,1,0,0,0\n"
    "26109,\"612  \",\"6128373\",\"キョウトフ\",\"キョウトシフシミク\",\"モウリチョウ\","
    "\"京都府\",\"京都市伏見区\",\"毛利町\",0,0,0,0,0,0\n"
    "35215,\"746  \",\"7460999\",\"ヤマグチケン\",\"シュウナンシ\",\"テストチョウ\","
    "\"山口県\",\"周南市\",\"試験町\",0,0,0,0,0,0\n";

static char dir[64];

static void path_of(char *out, size_t n, const char *name) {
  snprintf(out, n, "%s/%s", dir, name);
}

static void write_bytes(const char *name, const char *data, size_t len) {
  char p[256];
  path_of(p, sizeof(p), name);
  FILE *f = fopen(p, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(data, 1, len, f), len);
  assert_int_equal(fclose(f), 0);
}

static void write_text(const char *name, const char *text) {
  write_bytes(name, text, strlen(text));
}

/* The text in CP932 (Shift_JIS with Microsoft's extensions), by iconv. */
static void write_sjis(const char *name, const char *utf8) {
  iconv_t cd = iconv_open("CP932", "UTF-8");
  assert_true(cd != (iconv_t)-1);
  size_t il = strlen(utf8), ol = 2 * il + 16;
  char *out = malloc(ol), *op = out, *ip = (char *)utf8;
  assert_non_null(out);
  assert_true(iconv(cd, &ip, &il, &op, &ol) != (size_t)-1);
  iconv_close(cd);
  write_bytes(name, out, (size_t)(op - out));
  free(out);
}

static int setup(void **state) {
  (void)state;
  snprintf(dir, sizeof(dir), "/tmp/mg-test-address.XXXXXX");
  assert_non_null(mkdtemp(dir));
  return 0;
}

static int teardown(void **state) {
  (void)state;
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  assert_int_equal(system(cmd), 0);
  return 0;
}

/* Import `name` into db.sqlite: the return code; *rows and err filled. */
static int import(const char *name, const char *db, size_t *rows,
                  struct mg_err *err) {
  char src[256], dst[256];
  path_of(src, sizeof(src), name);
  path_of(dst, sizeof(dst), db);
  memset(err, 0, sizeof(*err));
  return mg_addr_import(src, dst, rows, err);
}

static struct mg_addr_db *open_db(const char *db) {
  char p[256];
  struct mg_addr_db *d = NULL;
  struct mg_err err = {{0}};
  path_of(p, sizeof(p), db);
  int rc = mg_addr_open(p, &d, &err);
  if (rc)
    fail_msg("open %s: %s", p, err.msg);
  return d;
}

/* A lookup or search as a parsed JSON array (caller frees). */
static struct mg_json *run(struct mg_addr_db *d, const char *code,
                           const char *q, size_t limit) {
  struct mg_buf b;
  struct mg_jw w;
  struct mg_err err = {{0}};
  struct mg_json *doc = NULL;
  struct mg_json_error je;
  mg_buf_init(&b);
  mg_jw_init(&w, &b);
  int rc = code ? mg_addr_by_postal(d, code, &w, &err)
                : mg_addr_search(d, q, limit, &w, &err);
  if (rc)
    fail_msg("%s: %d %s", code ? code : q, rc, err.msg);
  assert_false(w.bad);
  assert_false(b.oom);
  assert_int_equal(mg_json_parse(b.data, b.len, NULL, &doc, &je), 0);
  assert_int_equal(doc->type, MG_JSON_ARRAY);
  mg_buf_free(&b);
  return doc;
}

static const char *field(const struct mg_json *arr, size_t i, const char *k) {
  assert_true(i < arr->u.arr.n);
  const char *s = mg_json_get_str(arr->u.arr.items[i], k);
  assert_non_null(s);
  return s;
}

/* The error of a refused import contains every given piece. */
static void refused(const char *name, const char *text, ...) {
  struct mg_err err;
  size_t rows = 99;
  va_list ap;
  write_text(name, text);
  assert_int_equal(import(name, "refused.sqlite", &rows, &err), -EINVAL);
  assert_int_equal(rows, 0);
  va_start(ap, text);
  for (const char *want = va_arg(ap, const char *); want;
       want = va_arg(ap, const char *))
    if (!strstr(err.msg, want))
      fail_msg("\"%s\" not in \"%s\"", want, err.msg);
  va_end(ap);
  char p[256];
  struct stat st;
  path_of(p, sizeof(p), "refused.sqlite");
  assert_int_not_equal(stat(p, &st), 0); /* nothing made */
  path_of(p, sizeof(p), "refused.sqlite.tmp");
  assert_int_not_equal(stat(p, &st), 0); /* nothing left behind */
}

/* ---- tests ------------------------------------------------------------ */

static void test_postal_normalize(void **state) {
  (void)state;
  char out[8];
  struct mg_err err = {{0}};
  static const char *const good[] = {"7450004", "745-0004", "７４５－０００４",
                                     "〒745-0004", "７４５０００４", "745ー0004",
                                     "\xE3\x80\x80" "745-0004 "};
  for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
    assert_int_equal(mg_addr_postal_normalize(good[i], out, &err), 0);
    assert_string_equal(out, "7450004");
  }
  static const char *const bad[] = {"745000",  "74500041", "7450-004",
                                    "745--0004", "abc",     "",
                                    "745-0004x", "745 0004"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    assert_int_equal(mg_addr_postal_normalize(bad[i], out, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "7 digits"));
    assert_string_equal(out, "");
  }
}

/* Shift_JIS with every quirk: what each line becomes. */
static void test_import_shift_jis(void **state) {
  (void)state;
  struct mg_err err;
  size_t rows = 0;
  write_sjis("KEN_ALL.CSV", KEN_ALL);
  assert_int_equal(import("KEN_ALL.CSV", "a.sqlite", &rows, &err), 0);
  assert_int_equal(rows, KEN_ALL_ROWS);
  struct mg_addr_db *d = open_db("a.sqlite");
  assert_int_equal(mg_addr_rows(d), KEN_ALL_ROWS);
  assert_int_equal(strlen(mg_addr_imported_at(d)), 20);

  struct mg_json *a = run(d, "7450004", NULL, 0);
  assert_int_equal(a->u.arr.n, 1);
  assert_string_equal(field(a, 0, "pref"), "山口県");
  assert_string_equal(field(a, 0, "city"), "周南市");
  assert_string_equal(field(a, 0, "town"), "毛利町");
  assert_string_equal(field(a, 0, "pref_kana"), "ヤマグチケン");
  assert_string_equal(field(a, 0, "city_kana"), "シュウナンシ");
  assert_string_equal(field(a, 0, "town_kana"), "モウリマチ");
  assert_string_equal(field(a, 0, "note"), "");
  assert_string_equal(field(a, 0, "city_code"), "35215");
  assert_string_equal(field(a, 0, "postal_code"), "7450004");
  mg_json_free(a);

  /* 以下に掲載がない場合: no town, the phrase as the note */
  a = run(d, "745-0000", NULL, 0);
  assert_int_equal(a->u.arr.n, 1);
  assert_string_equal(field(a, 0, "town"), "");
  assert_string_equal(field(a, 0, "town_kana"), "");
  assert_string_equal(field(a, 0, "note"), "以下に掲載がない場合");
  mg_json_free(a);

  /* two lines joined, kanji and kana; the bracket is the note */
  a = run(d, "0640941", NULL, 0);
  assert_int_equal(a->u.arr.n, 1);
  assert_string_equal(field(a, 0, "town"), "旭ケ丘");
  assert_string_equal(field(a, 0, "town_kana"), "アサヒガオカ");
  /* CP932 has one wave dash: 0x8160 reads as U+FF5E ～, as in Japan
   * Post's own UTF-8 file */
  assert_string_equal(field(a, 0, "note"), "１丁目～５丁目");
  mg_json_free(a);

  a = run(d, "0600042", NULL, 0);
  assert_string_equal(field(a, 0, "town"), "大通西");
  assert_string_equal(field(a, 0, "town_kana"), "オオドオリニシ");
  assert_string_equal(field(a, 0, "note"), "１～１９丁目");
  mg_json_free(a);

  a = run(d, "1000005", NULL, 0);
  assert_string_equal(field(a, 0, "town"), "丸の内");
  assert_string_equal(field(a, 0, "note"), "次のビルを除く");
  mg_json_free(a);
  a = run(d, "1006090", NULL, 0);
  assert_string_equal(field(a, 0, "town"), "霞が関霞が関ビル");
  assert_string_equal(field(a, 0, "town_kana"), "カスミガセキカスミガセキビル");
  assert_string_equal(field(a, 0, "note"), "地階・階層不明");
  mg_json_free(a);
  a = run(d, "1006001", NULL, 0);
  assert_string_equal(field(a, 0, "town"), "霞が関霞が関ビル");
  assert_string_equal(field(a, 0, "note"), "１階");
  mg_json_free(a);

  /* 三宅村一円: the whole village; 多賀町の「一円」 is a town */
  a = run(d, "1001101", NULL, 0);
  assert_string_equal(field(a, 0, "town"), "");
  assert_string_equal(field(a, 0, "town_kana"), "");
  assert_string_equal(field(a, 0, "note"), "一円");
  mg_json_free(a);
  a = run(d, "5220317", NULL, 0);
  assert_string_equal(field(a, 0, "town"), "一円");
  assert_string_equal(field(a, 0, "town_kana"), "イチエン");
  assert_string_equal(field(a, 0, "note"), "");
  mg_json_free(a);

  a = run(d, "3060433", NULL, 0);
  assert_string_equal(field(a, 0, "town"), "");
  assert_string_equal(field(a, 0, "note"), "境町の次に番地がくる場合");
  mg_json_free(a);

  /* one code over two prefectures, in the file's order */
  a = run(d, "4980000", NULL, 0);
  assert_int_equal(a->u.arr.n, 2);
  assert_string_equal(field(a, 0, "pref"), "愛知県");
  assert_string_equal(field(a, 1, "pref"), "三重県");
  assert_string_equal(field(a, 1, "city"), "桑名郡木曽岬町");
  mg_json_free(a);

  /* CP932's IBM extension came through */
  a = run(d, "7450877", NULL, 0);
  assert_string_equal(field(a, 0, "town"), "髙台");
  mg_json_free(a);

  /* an unknown code: an empty array; a malformed one: -EINVAL, nothing
   * written */
  a = run(d, "9999999", NULL, 0);
  assert_int_equal(a->u.arr.n, 0);
  mg_json_free(a);
  struct mg_buf b;
  struct mg_jw w;
  mg_buf_init(&b);
  mg_jw_init(&w, &b);
  assert_int_equal(mg_addr_by_postal(d, "745", &w, &err), -EINVAL);
  assert_non_null(strstr(err.msg, "7 digits"));
  assert_int_equal(b.len, 0);
  mg_buf_free(&b);
  mg_addr_close(d);
}

/* The search in kanji, hiragana, katakana and half-width kana. */
static void test_search(void **state) {
  (void)state;
  struct mg_err err;
  size_t rows = 0;
  write_sjis("KEN_ALL.CSV", KEN_ALL);
  assert_int_equal(import("KEN_ALL.CSV", "s.sqlite", &rows, &err), 0);
  struct mg_addr_db *d = open_db("s.sqlite");
  static const char *const mouri[] = {
      "周南市毛利", "しゅうなんしもうり", "シュウナンシモウリ", "ｼｭｳﾅﾝｼﾓｳﾘ",
      "しゅうなんし　もうり", "毛利町", "もうりまち", "毛利", "山口県周南市毛利町",
  };
  for (size_t i = 0; i < sizeof(mouri) / sizeof(mouri[0]); i++) {
    struct mg_json *a = run(d, NULL, mouri[i], 10);
    if (a->u.arr.n < 1 || strcmp(field(a, 0, "postal_code"), "7450004"))
      fail_msg("\"%s\" does not find 毛利町 first", mouri[i]);
    mg_json_free(a);
  }
  /* the whole city (its address without a town) first, then its towns */
  struct mg_json *a = run(d, NULL, "周南市", 10);
  assert_int_equal(a->u.arr.n, 3);
  assert_string_equal(field(a, 0, "postal_code"), "7450000");
  assert_string_equal(field(a, 1, "town"), "髙台"); /* shorter than 毛利町 */
  assert_string_equal(field(a, 2, "town"), "毛利町");
  mg_json_free(a);
  /* a limit is a limit */
  a = run(d, NULL, "しゅうなんし", 2);
  assert_int_equal(a->u.arr.n, 2);
  mg_json_free(a);
  /* inside a name (three characters or more): 霞が関ビル */
  a = run(d, NULL, "がせきビル", 10);
  assert_int_equal(a->u.arr.n, 2);
  assert_string_equal(field(a, 0, "city"), "千代田区");
  mg_json_free(a);
  /* a prefecture's beginning finds its cities */
  a = run(d, NULL, "みえ", 10);
  assert_int_equal(a->u.arr.n, 1);
  assert_string_equal(field(a, 0, "city"), "桑名郡木曽岬町");
  mg_json_free(a);
  /* a postal code in the search box */
  a = run(d, NULL, "〒498-0000", 10);
  assert_int_equal(a->u.arr.n, 2);
  mg_json_free(a);
  /* nothing found is an empty answer */
  a = run(d, NULL, "存在しない町", 10);
  assert_int_equal(a->u.arr.n, 0);
  mg_json_free(a);

  /* refused: empty text, limit out of range; nothing written */
  struct mg_buf b;
  struct mg_jw w;
  mg_buf_init(&b);
  mg_jw_init(&w, &b);
  assert_int_equal(mg_addr_search(d, " 　", 10, &w, &err), -EINVAL);
  assert_non_null(strstr(err.msg, "empty"));
  assert_int_equal(mg_addr_search(d, "毛利", 0, &w, &err), -EINVAL);
  assert_int_equal(mg_addr_search(d, "毛利", 101, &w, &err), -EINVAL);
  assert_non_null(strstr(err.msg, "limit"));
  assert_int_equal(b.len, 0);
  mg_buf_free(&b);
  mg_addr_close(d);
}

/* utf_ken_all.csv: UTF-8 with a BOM and full-width kana. */
static void test_import_utf8(void **state) {
  (void)state;
  struct mg_err err;
  size_t rows = 0;
  write_text("utf_ken_all.csv", UTF_KEN_ALL);
  assert_int_equal(import("utf_ken_all.csv", "u.sqlite", &rows, &err), 0);
  assert_int_equal(rows, 3);
  struct mg_addr_db *d = open_db("u.sqlite");
  struct mg_json *a = run(d, NULL, "もうりまち", 10);
  assert_int_equal(a->u.arr.n, 1);
  assert_string_equal(field(a, 0, "city"), "周南市");
  mg_json_free(a);
  a = run(d, NULL, "毛利町", 10); /* two towns of that name */
  assert_int_equal(a->u.arr.n, 2);
  mg_json_free(a);
  a = run(d, "7460999", NULL, 0);
  assert_string_equal(field(a, 0, "town_kana"), "テストチョウ");
  mg_json_free(a);
  mg_addr_close(d);
  /* without the BOM too */
  write_text("nobom.csv", UTF_KEN_ALL + 3);
  assert_int_equal(import("nobom.csv", "u.sqlite", &rows, &err), 0);
  assert_int_equal(rows, 3);
}

#define LINE_OK                                                                \
  "35215,\"745  \",\"7450004\",\"ヤマグチケン\",\"シュウナンシ\",\"モウリマチ\","  \
  "\"山口県\",\"周南市\",\"毛利町\",0,0,1,0,0,0\n"

/* Each malformed line names FILE:LINE and the rule; nothing is made. */
static void test_malformed(void **state) {
  (void)state;
  char p[256];
  path_of(p, sizeof(p), "bad.csv");
  char where[300];
  snprintf(where, sizeof(where), "%s:2:", p);
  refused("bad.csv",
          LINE_OK "35215,\"745  \",\"7450005\",\"ヤマグチケン\",\"シュウナンシ\","
                  "\"ダイダイ\",\"山口県\",\"周南市\",\"代々木通\",0,0,1,0,0\n",
          where, "14 columns; a KEN_ALL line has 15", NULL);
  refused("bad.csv",
          LINE_OK "35215,\"745  \",\"745005\",\"ヤマグチケン\",\"シュウナンシ\","
                  "\"ダイダイ\",\"山口県\",\"周南市\",\"代々木通\",0,0,1,0,0,0\n",
          where, "column 3 (郵便番号) is not 7 digits", NULL);
  refused("bad.csv",
          LINE_OK "3521,\"745  \",\"7450005\",\"ヤマグチケン\",\"シュウナンシ\","
                  "\"ダイダイ\",\"山口県\",\"周南市\",\"代々木通\",0,0,1,0,0,0\n",
          where, "column 1 (全国地方公共団体コード) is not 5 digits", NULL);
  refused("bad.csv",
          LINE_OK "35215,\"745  \",\"7450005\",\"ヤマグチケン\",\"シュウナンシ\","
                  "\"ダイダイ\",\"山口県\",\"周南市\",\"代々木通,0,0,1,0,0,0\n",
          where, "quoted cell is not closed", NULL);
  refused("bad.csv",
          LINE_OK "35215,\"745  \",\"7450005\",\"ヤマグチケン\",\"\","
                  "\"ダイダイ\",\"山口県\",\"\",\"代々木通\",0,0,1,0,0,0\n",
          where, "column 8 (市区町村名) is empty", NULL);
  refused("bad.csv", LINE_OK "35215,\"745  \",\"7450005\",\"\xff\xfe\"\n",
          where, "invalid UTF-8", NULL);
  /* a town opened on line 2 and never closed */
  refused("bad.csv",
          LINE_OK "01101,\"064  \",\"0640941\",\"ホッカイドウ\",\"サッポロシ\","
                  "\"アサヒガオカ(1\",\"北海道\",\"札幌市中央区\",\"旭ケ丘（１丁目\","
                  "0,0,1,0,0,0\n",
          where, "the town opened with （ on line 2 is never closed (end of file)",
          NULL);
  /* ... or followed by another postal code (line 3) */
  snprintf(where, sizeof(where), "%s:3:", p);
  refused("bad.csv",
          LINE_OK "01101,\"064  \",\"0640941\",\"ホッカイドウ\",\"サッポロシ\","
                  "\"アサヒガオカ(1\",\"北海道\",\"札幌市中央区\",\"旭ケ丘（１丁目\","
                  "0,0,1,0,0,0\n" LINE_OK,
          where, "opened with （ on line 2 is not closed before another postal code",
          NULL);
  /* no address at all */
  snprintf(where, sizeof(where), "%s: no address", p);
  refused("bad.csv", "\n\n", where, NULL);

  /* Shift_JIS with a byte that is no CP932 character on line 3 */
  path_of(p, sizeof(p), "bad-sjis.csv");
  snprintf(where, sizeof(where), "%s:3:", p);
  {
    iconv_t cd = iconv_open("CP932", "UTF-8");
    char in[] = LINE_OK LINE_OK, out[1024], *ip = in, *op = out;
    size_t il = strlen(in), ol = sizeof(out);
    assert_true(cd != (iconv_t)-1);
    assert_true(iconv(cd, &ip, &il, &op, &ol) != (size_t)-1);
    iconv_close(cd);
    static const char bad[] = "35215,\"745  \",\"7450005\",\"\x81\x20\"\n";
    memcpy(op, bad, strlen(bad));
    op += strlen(bad);
    write_bytes("bad-sjis.csv", out, (size_t)(op - out));
    struct mg_err err;
    assert_int_equal(import("bad-sjis.csv", "refused.sqlite", NULL, &err),
                     -EINVAL);
    assert_non_null(strstr(err.msg, where));
    assert_non_null(strstr(err.msg, "invalid Shift_JIS"));
  }
}

/* A failed import leaves the old dictionary answering; a good one replaces
 * it atomically while a reader of the old file keeps its answers. */
static void test_atomic_replace(void **state) {
  (void)state;
  struct mg_err err;
  size_t rows = 0;
  char p[256];
  struct stat st;
  write_sjis("KEN_ALL.CSV", KEN_ALL);
  assert_int_equal(import("KEN_ALL.CSV", "live.sqlite", &rows, &err), 0);
  struct mg_addr_db *old = open_db("live.sqlite");

  /* a bad file: refused, the dictionary as it was */
  write_text("broken.csv", LINE_OK "35215,\"745  \",\"74500\"\n");
  assert_int_equal(import("broken.csv", "live.sqlite", &rows, &err), -EINVAL);
  struct mg_addr_db *again = open_db("live.sqlite");
  assert_int_equal(mg_addr_rows(again), KEN_ALL_ROWS);
  struct mg_json *a = run(again, "0640941", NULL, 0);
  assert_int_equal(a->u.arr.n, 1);
  mg_json_free(a);
  mg_addr_close(again);
  path_of(p, sizeof(p), "live.sqlite.tmp");
  assert_int_not_equal(stat(p, &st), 0);

  /* a good file replaces it; the open one still answers from the old */
  write_text("utf_ken_all.csv", UTF_KEN_ALL);
  assert_int_equal(import("utf_ken_all.csv", "live.sqlite", &rows, &err), 0);
  assert_int_equal(rows, 3);
  a = run(old, "0640941", NULL, 0);
  assert_int_equal(a->u.arr.n, 1);
  mg_json_free(a);
  assert_int_equal(mg_addr_rows(old), KEN_ALL_ROWS);
  mg_addr_close(old);
  struct mg_addr_db *fresh = open_db("live.sqlite");
  assert_int_equal(mg_addr_rows(fresh), 3);
  a = run(fresh, "0640941", NULL, 0);
  assert_int_equal(a->u.arr.n, 0);
  mg_json_free(a);
  mg_addr_close(fresh);
}

static void test_open_refusals(void **state) {
  (void)state;
  struct mg_addr_db *d = NULL;
  struct mg_err err = {{0}};
  char p[256];
  path_of(p, sizeof(p), "none.sqlite");
  assert_int_equal(mg_addr_open(p, &d, &err), -ENOENT);
  assert_null(d);
  assert_non_null(strstr(err.msg, "no address dictionary imported yet"));
  /* another program's SQLite file */
  sqlite3 *db = NULL;
  path_of(p, sizeof(p), "other.sqlite");
  assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
  assert_int_equal(sqlite3_exec(db, "CREATE TABLE t(x)", NULL, NULL, NULL),
                   SQLITE_OK);
  sqlite3_close(db);
  assert_int_equal(mg_addr_open(p, &d, &err), -EPROTO);
  assert_non_null(strstr(err.msg, "not an address dictionary"));
  /* not a database */
  write_text("text.sqlite", "hello, this is not SQLite at all...............");
  path_of(p, sizeof(p), "text.sqlite");
  assert_int_equal(mg_addr_open(p, &d, &err), -EIO);
  assert_null(d);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_postal_normalize),
      cmocka_unit_test_setup_teardown(test_import_shift_jis, setup, teardown),
      cmocka_unit_test_setup_teardown(test_search, setup, teardown),
      cmocka_unit_test_setup_teardown(test_import_utf8, setup, teardown),
      cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
      cmocka_unit_test_setup_teardown(test_atomic_replace, setup, teardown),
      cmocka_unit_test_setup_teardown(test_open_refusals, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
