/*
 * test_csvexport — the csvexport exporter plugin (X4, FG6) against a fake
 * host (tests/unit/fake_host.h): RFC 4180 quoting (comma, quote, CR/LF in
 * a cell, Japanese text, empty, null, edge spaces), the BOM, CRLF, atomic
 * rename (no .part left, a stale one replaced, re-export replaces),
 * refused requests (bad name, ragged row, non-string cell, ...) answered
 * FATAL naming the place before anything is written, and the file read back
 * both by a strict parser here and by Python's csv module.  Everyone in the
 * data is fictional.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
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

#include "config.h"
#include "plugin_host.h"

#include "fake_host.h"

#ifndef MG_TEST_PLUGIN_DIR
#error "MG_TEST_PLUGIN_DIR must name the directory of the built plugins"
#endif

struct t {
  char dir[64];
  struct mg_plugin_lib *lib;
  const struct mg_plugin *p;
  void *ctx;
  int started;
};

/* ---------------------------------------------------------------------- */
/* Helpers                                                                 */

static int rm_cb(const char *path, const struct stat *st, int flag,
                 struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  return remove(path);
}

static char *read_all(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  char *buf = NULL;
  size_t cap = 0, n = 0, r;
  if (!f)
    return NULL;
  do {
    if (n + 4096 + 1 > cap) {
      cap = cap ? cap * 2 : 8192;
      buf = realloc(buf, cap);
      assert_non_null(buf);
    }
    r = fread(buf + n, 1, 4096, f);
    n += r;
  } while (r > 0);
  fclose(f);
  buf[n] = '\0';
  *len = n;
  return buf;
}

static int count_entries(const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *e;
  int n = 0;
  assert_non_null(d);
  while ((e = readdir(d)))
    n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
  closedir(d);
  return n;
}

static int has_part_file(const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *e;
  int found = 0;
  assert_non_null(d);
  while ((e = readdir(d)))
    found |= strstr(e->d_name, ".part") != NULL;
  closedir(d);
  return found;
}

/* Load, configure (kv pairs "key", "value", ..., NULL), init and start. */
static int open_plugin(struct t *t, ...) {
  struct mg_config_kv kv[8];
  size_t n = 0;
  struct mg_err err = {{0}};
  va_list ap;
  va_start(ap, t);
  for (const char *k; (k = va_arg(ap, const char *)) && n < 8; n++) {
    kv[n].key = (char *)k;
    kv[n].value = va_arg(ap, char *);
    kv[n].line = (int)n + 2;
  }
  va_end(ap);
  assert_int_equal(
      mg_plugin_load(MG_TEST_PLUGIN_DIR "/csvexport.so", &t->lib, NULL), 0);
  t->p = t->lib->desc;
  assert_int_equal(t->p->kind, MG_PLUGIN_KIND_EXPORTER);
  t->ctx = calloc(1, t->p->ctx_size);
  assert_non_null(t->ctx);
  int rc = mg_config_apply(t->p->config, t->ctx, kv, n, "test.conf", 1,
                           "[exporter \"x\"]", &err);
  if (rc != 0) {
    print_message("config: %s\n", err.msg);
    return rc;
  }
  assert_int_equal(t->p->init(t->ctx, &fk_host, NULL), MG_PLUGIN_OK);
  t->started = 1;
  return t->p->start(t->ctx);
}

static int setup(void **state) {
  struct t *t = calloc(1, sizeof(*t));
  assert_non_null(t);
  snprintf(t->dir, sizeof(t->dir), "/tmp/mg-csvexport.XXXXXX");
  assert_non_null(mkdtemp(t->dir));
  fk_reset();
  *state = t;
  return 0;
}

/* Undo open_plugin, whatever stage it reached. */
static void close_plugin(struct t *t) {
  if (t->started) {
    t->p->stop(t->ctx);
    t->p->fini(t->ctx);
  }
  if (t->p && t->ctx)
    mg_config_release(t->p->config, t->ctx);
  free(t->ctx);
  mg_plugin_unload(t->lib);
  t->started = 0;
  t->ctx = NULL;
  t->p = NULL;
  t->lib = NULL;
}

static int teardown(void **state) {
  struct t *t = *state;
  close_plugin(t);
  nftw(t->dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
  free(t);
  fk_reset();
  return 0;
}

/* Run one export; the answer is fk's last. */
static int export(struct t *t, const char *args) {
  static uint64_t req = 100;
  return t->p->command(t->ctx, ++req, "export", args);
}

/* A strict RFC 4180 reader: cells of the file as "a|b|c" lines joined by
 * "\n", with '|' and '\n' inside cells shown as "<|>" and "<LF>", "<CR>".
 * Returns NULL on a format error (bare quote, missing CRLF). */
static char *parse_back(const char *s, size_t n) {
  size_t cap = n * 6 + 16, o = 0, i = 0;
  char *out = malloc(cap);
  assert_non_null(out);
#define PUT(str)                                                               \
  do {                                                                         \
    size_t l_ = strlen(str);                                                   \
    memcpy(out + o, str, l_);                                                  \
    o += l_;                                                                   \
  } while (0)
  while (i < n) {
    int first = 1;
    for (;;) { /* one cell */
      if (!first)
        PUT("|");
      first = 0;
      if (i < n && s[i] == '"') {
        i++;
        for (;;) {
          if (i >= n)
            goto bad;
          if (s[i] == '"') {
            if (i + 1 < n && s[i + 1] == '"') {
              PUT("\"");
              i += 2;
              continue;
            }
            i++;
            break;
          }
          if (s[i] == '\r')
            PUT("<CR>");
          else if (s[i] == '\n')
            PUT("<LF>");
          else if (s[i] == '|')
            PUT("<|>");
          else
            out[o++] = s[i];
          i++;
        }
      } else {
        while (i < n && s[i] != ',' && s[i] != '\r') {
          if (s[i] == '"' || s[i] == '\n')
            goto bad; /* a quote or bare LF in an unquoted cell */
          if (s[i] == '|')
            PUT("<|>");
          else
            out[o++] = s[i];
          i++;
        }
      }
      if (i < n && s[i] == ',') {
        i++;
        continue;
      }
      if (i + 1 < n && s[i] == '\r' && s[i + 1] == '\n') {
        i += 2;
        PUT("\n");
        break;
      }
      goto bad; /* every line ends with CRLF, the last one too */
    }
  }
  out[o] = '\0';
  return out;
#undef PUT
bad:
  free(out);
  return NULL;
}

/* ---------------------------------------------------------------------- */
/* Tests                                                                   */

static const char *quoting_args =
    "{\"name\":\"tennyu-20260401\","
    "\"header\":[\"番号\",\"氏名\",\"住所\",\"備考\",\"空\"],"
    "\"rows\":["
    "[\"0001\",\"山田 太郎\",\"山口県周南市岐山通1-1, 架空ハイツ101\","
    "\"彼は \\\"大丈夫\\\" と言った\",\"\"],"
    "[\"0002\",\"佐藤 花子\",\"1行目\\r\\n2行目\",\" 前後に空白 \",null],"
    "[\"0003\",\"Tanaka\\tIchiro\",\"LF\\nonly\",\"CR\\ronly\",\"x|y\"]]}";

/* The exact bytes for quoting_args: what each rule does to each cell. */
static const char expected_csv[] =
    "\xEF\xBB\xBF"
    "番号,氏名,住所,備考,空\r\n"
    "0001,山田 太郎,\"山口県周南市岐山通1-1, 架空ハイツ101\","
    "\"彼は \"\"大丈夫\"\" と言った\",\r\n"
    "0002,佐藤 花子,\"1行目\r\n2行目\",\" 前後に空白 \",\r\n"
    "0003,Tanaka\tIchiro,\"LF\nonly\",\"CR\ronly\",x|y\r\n";

static void test_quoting(void **state) {
  struct t *t = *state;
  char path[128], want[256];
  size_t len;
  struct stat st;
  assert_int_equal(open_plugin(t, "dir", t->dir, NULL), MG_PLUGIN_OK);
  assert_int_equal(export(t, quoting_args), MG_PLUGIN_PENDING);
  assert_int_equal(fk.completes, 1); /* inline work: already answered */
  assert_int_equal(fk.status[0], MG_PLUGIN_OK);
  snprintf(path, sizeof(path), "%s/tennyu-20260401.csv", t->dir);
  snprintf(want, sizeof(want), "{\"file\":\"%s\",\"rows\":3,\"bytes\":%zu}",
           path, sizeof(expected_csv) - 1);
  assert_string_equal(fk.json[0], want);

  char *got = read_all(path, &len);
  assert_non_null(got);
  assert_int_equal(len, sizeof(expected_csv) - 1);
  assert_memory_equal(got, expected_csv, len);
  assert_true(len > 3 && memcmp(got, "\xEF\xBB\xBF", 3) == 0); /* BOM */

  /* Read back by a strict parser: every cell as it was sent. */
  char *cells = parse_back(got + 3, len - 3);
  assert_non_null(cells);
  assert_string_equal(cells,
                      "番号|氏名|住所|備考|空\n"
                      "0001|山田 太郎|山口県周南市岐山通1-1, 架空ハイツ101|"
                      "彼は \"大丈夫\" と言った|\n"
                      "0002|佐藤 花子|1行目<CR><LF>2行目| 前後に空白 |\n"
                      "0003|Tanaka\tIchiro|LF<LF>only|CR<CR>only|x<|>y\n");
  free(cells);
  free(got);

  assert_false(has_part_file(t->dir)); /* renamed into place */
  assert_int_equal(count_entries(t->dir), 1);
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 07777, 0640); /* the default mode */
  /* Residents' data stays out of the log: cells and the file name. */
  assert_true(fk_logs_lack("山田"));
  assert_true(fk_logs_lack("tennyu"));
  assert_true(fk.logs >= 1);
}

/* Python's csv module reads the file back as the cells sent. */
static void test_python_reads_it(void **state) {
  struct t *t = *state;
  char path[128], exp[128], cmd[1024];
  FILE *f;
  assert_int_equal(open_plugin(t, "dir", t->dir, NULL), MG_PLUGIN_OK);
  assert_int_equal(export(t, quoting_args), MG_PLUGIN_PENDING);
  assert_int_equal(fk.status[0], MG_PLUGIN_OK);
  snprintf(path, sizeof(path), "%s/tennyu-20260401.csv", t->dir);
  snprintf(exp, sizeof(exp), "%s/expected.json", t->dir);
  f = fopen(exp, "w");
  assert_non_null(f);
  /* header + rows, null as "" */
  fputs("[[\"番号\",\"氏名\",\"住所\",\"備考\",\"空\"],"
        "[\"0001\",\"山田 太郎\",\"山口県周南市岐山通1-1, 架空ハイツ101\","
        "\"彼は \\\"大丈夫\\\" と言った\",\"\"],"
        "[\"0002\",\"佐藤 花子\",\"1行目\\r\\n2行目\",\" 前後に空白 \",\"\"],"
        "[\"0003\",\"Tanaka\\tIchiro\",\"LF\\nonly\",\"CR\\ronly\",\"x|y\"]]",
        f);
  fclose(f);
  snprintf(cmd, sizeof(cmd),
           "python3 -c 'import csv, json, sys\n"
           "raw = open(sys.argv[1], \"rb\").read()\n"
           "assert raw.startswith(b\"\\xef\\xbb\\xbf\"), \"no BOM\"\n"
           "f = open(sys.argv[1], newline=\"\", encoding=\"utf-8-sig\")\n"
           "rows = list(csv.reader(f, strict=True))\n"
           "exp = json.load(open(sys.argv[2], encoding=\"utf-8\"))\n"
           "sys.exit(0 if rows == exp else \"csv module read %%r\" %% rows)' "
           "'%s' '%s'",
           path, exp);
  assert_int_equal(system(cmd), 0);
}

static void test_no_bom_empty_rows(void **state) {
  struct t *t = *state;
  char path[128];
  size_t len;
  assert_int_equal(open_plugin(t, "dir", t->dir, "bom", "no", "mode", "0600",
                               NULL),
                   MG_PLUGIN_OK);
  assert_int_equal(
      export(t, "{\"rows\":[],\"header\":[\"a\",\"b,c\"],\"name\":\"only_header\"}"),
      MG_PLUGIN_PENDING);
  assert_int_equal(fk.status[0], MG_PLUGIN_OK);
  assert_non_null(strstr(fk.json[0], "\"rows\":0"));
  snprintf(path, sizeof(path), "%s/only_header.csv", t->dir);
  char *got = read_all(path, &len);
  assert_non_null(got);
  assert_string_equal(got, "a,\"b,c\"\r\n"); /* no BOM; header still there */
  free(got);
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 07777, 0600);
}

/* A second export of a name replaces the file (a re-export after a crash
 * is idempotent), and a stale .part from a crash is overwritten. */
static void test_reexport_replaces(void **state) {
  struct t *t = *state;
  char path[128], part[128];
  size_t len;
  assert_int_equal(open_plugin(t, "dir", t->dir, NULL), MG_PLUGIN_OK);
  snprintf(path, sizeof(path), "%s/daily.csv", t->dir);
  snprintf(part, sizeof(part), "%s/.daily.csv.part", t->dir);
  FILE *f = fopen(part, "w");
  assert_non_null(f);
  fputs("half a file from before a crash", f);
  fclose(f);
  assert_int_equal(
      export(t, "{\"name\":\"daily\",\"header\":[\"n\"],\"rows\":[[\"1\"]]}"),
      MG_PLUGIN_PENDING);
  assert_int_equal(
      export(t, "{\"name\":\"daily\",\"header\":[\"n\"],\"rows\":[[\"2\"],[\"3\"]]}"),
      MG_PLUGIN_PENDING);
  assert_int_equal(fk.completes, 2);
  assert_int_equal(fk.status[0], MG_PLUGIN_OK);
  assert_int_equal(fk.status[1], MG_PLUGIN_OK);
  char *got = read_all(path, &len);
  assert_non_null(got);
  assert_string_equal(got, "\xEF\xBB\xBFn\r\n2\r\n3\r\n");
  free(got);
  assert_int_equal(access(part, F_OK), -1);
  assert_int_equal(count_entries(t->dir), 1);
}

/* Every refused request: FATAL with the rule and the place, answered
 * before PENDING is returned, and nothing written. */
static void test_refused(void **state) {
  struct t *t = *state;
  static const struct {
    const char *args, *msg;
  } cases[] = {
      {"{\"name\":\".hidden\",\"header\":[\"a\"],\"rows\":[]}",
       "name: must be 1-128 characters"},
      {"{\"name\":\"\",\"header\":[\"a\"],\"rows\":[]}", "name: must be"},
      {"{\"name\":\"../up\",\"header\":[\"a\"],\"rows\":[]}", "name: must be"},
      {"{\"name\":\"a/b\",\"header\":[\"a\"],\"rows\":[]}", "name: must be"},
      {"{\"name\":\"転入\",\"header\":[\"a\"],\"rows\":[]}", "name: must be"},
      {"{\"name\":1,\"header\":[\"a\"],\"rows\":[]}", "name: must be"},
      {"{\"name\":\"x\",\"header\":[\"a\",\"b\"],\"rows\":[[\"1\",\"2\"],[\"1\"]]}",
       "rows[1]: has 1 cells, the header has 2 (every row needs one cell per "
       "column)"},
      {"{\"name\":\"x\",\"header\":[\"a\",\"b\"],\"rows\":[[\"1\",2]]}",
       "rows[0][1]: must be a string or null, not a number"},
      {"{\"name\":\"x\",\"header\":[\"a\"],\"rows\":[[true]]}",
       "rows[0][0]: must be a string or null, not a boolean"},
      {"{\"name\":\"x\",\"header\":[\"a\"],\"rows\":[[{\"v\":1}]]}",
       "rows[0][0]: must be a string or null, not an object"},
      {"{\"name\":\"x\",\"header\":[\"a\"],\"rows\":[\"1\"]}",
       "rows[0]: must be an array of strings or nulls, not a string"},
      {"{\"name\":\"x\",\"header\":[\"a\",null],\"rows\":[]}",
       "header[1]: must be a string, not null"},
      {"{\"name\":\"x\",\"header\":[],\"rows\":[]}",
       "header: must name at least one column"},
      {"{\"name\":\"x\",\"rows\":[]}", "header: missing"},
      {"{\"name\":\"x\",\"header\":[\"a\"]}", "rows: missing"},
      {"{\"header\":[\"a\"],\"rows\":[]}", "name: missing"},
      {"{\"name\":\"x\",\"header\":[\"a\"],\"rows\":[],\"colour\":\"red\"}",
       "unknown key \\\"colour\\\""},
      {"{\"name\":\"x\",\"header\":[\"a\"],\"rows\":{}}",
       "rows: must be an array of rows, not an object"},
      {"{\"name\":\"x\",\"header\":[\"a\"],\"rows\":[[\"\\u0000\"]]}",
       "rows[0][0]: a malformed string"},
      {"{\"name\":\"x\",\"header\":[\"a\"],\"rows\":[[\"\xff\"]]}",
       "rows[0][0]: is not valid UTF-8"},
      {"{\"name\":\"x\",\"header\":[\"a\"],\"rows\":[[\"\xed\xa0\x80\"]]}",
       "rows[0][0]: is not valid UTF-8"}, /* an encoded surrogate */
      {"{\"name\":\"x\",\"header\":[\"a\"],\"rows\":[]} trailing",
       "text after the JSON object"},
      {"[1,2]", "export needs {"},
      {NULL, "export needs {"},
  };
  char name129[160];
  assert_int_equal(open_plugin(t, "dir", t->dir, NULL), MG_PLUGIN_OK);
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    int before = fk.completes;
    assert_int_equal(export(t, cases[i].args), MG_PLUGIN_PENDING);
    assert_int_equal(fk.completes, before + 1);
    assert_int_equal(fk.status[before], MG_PLUGIN_FATAL);
    if (!strstr(fk.json[before], cases[i].msg))
      fail_msg("case %zu: \"%s\" lacks \"%s\"", i, fk.json[before],
               cases[i].msg);
  }
  /* 128 characters are fine, 129 are not */
  memset(name129, 'n', 129);
  name129[129] = '\0';
  char args[300];
  snprintf(args, sizeof(args), "{\"name\":\"%s\",\"header\":[\"a\"],\"rows\":[]}",
           name129);
  assert_int_equal(export(t, args), MG_PLUGIN_PENDING);
  assert_int_equal(fk.status[fk.completes - 1], MG_PLUGIN_FATAL);
  assert_int_equal(count_entries(t->dir), 0); /* nothing written */
  snprintf(args, sizeof(args), "{\"name\":\"%.128s\",\"header\":[\"a\"],\"rows\":[]}",
           name129);
  assert_int_equal(export(t, args), MG_PLUGIN_PENDING);
  assert_int_equal(fk.status[fk.completes - 1], MG_PLUGIN_OK);
  assert_int_equal(t->p->command(t->ctx, 1, "print", "{}"), MG_PLUGIN_FATAL);
}

/* Two exports of one name at once would share a .part: the second is told
 * to try again; other names go ahead. */
static void test_same_name_in_flight(void **state) {
  struct t *t = *state;
  const char *a = "{\"name\":\"a\",\"header\":[\"h\"],\"rows\":[[\"1\"]]}";
  assert_int_equal(open_plugin(t, "dir", t->dir, NULL), MG_PLUGIN_OK);
  fk.deferred = 1;
  assert_int_equal(export(t, a), MG_PLUGIN_PENDING);
  assert_int_equal(fk.completes, 0);
  assert_int_equal(export(t, a), MG_PLUGIN_PENDING);
  assert_int_equal(fk.completes, 1);
  assert_int_equal(fk.status[0], MG_PLUGIN_RETRY);
  assert_non_null(strstr(fk.json[0], "being written"));
  assert_int_equal(
      export(t, "{\"name\":\"b\",\"header\":[\"h\"],\"rows\":[]}"),
      MG_PLUGIN_PENDING);
  char d[512];
  assert_true(t->p->describe(t->ctx, d, sizeof(d)) > 0);
  assert_non_null(strstr(d, "\"active\":2"));
  assert_int_equal(fk_run(0), 1);
  assert_int_equal(fk_run(0), 1);
  assert_int_equal(fk.completes, 3);
  assert_int_equal(fk.status[1], MG_PLUGIN_OK);
  assert_int_equal(fk.status[2], MG_PLUGIN_OK);
  assert_int_equal(count_entries(t->dir), 2);
  /* a work cancelled at stop is answered RETRY and writes nothing */
  assert_int_equal(
      export(t, "{\"name\":\"c\",\"header\":[\"h\"],\"rows\":[]}"),
      MG_PLUGIN_PENDING);
  assert_int_equal(fk_run(-ECANCELED), 1);
  assert_int_equal(fk.status[3], MG_PLUGIN_RETRY);
  assert_int_equal(count_entries(t->dir), 2);
  assert_true(t->p->describe(t->ctx, d, sizeof(d)) > 0);
  assert_non_null(strstr(d, "\"exports\":2,\"failed\":1,\"active\":0"));
}

/* A directory that went away answers FATAL with the step and errno. */
static void test_write_failure(void **state) {
  struct t *t = *state;
  char sub[128];
  snprintf(sub, sizeof(sub), "%s/sub", t->dir);
  assert_int_equal(mkdir(sub, 0700), 0);
  assert_int_equal(open_plugin(t, "dir", sub, NULL), MG_PLUGIN_OK);
  assert_int_equal(rmdir(sub), 0);
  assert_int_equal(export(t, "{\"name\":\"x\",\"header\":[\"h\"],\"rows\":[]}"),
                   MG_PLUGIN_PENDING);
  assert_int_equal(fk.status[0], MG_PLUGIN_FATAL);
  assert_non_null(strstr(fk.json[0], "cannot create the file"));
  assert_non_null(strstr(fk.json[0], "No such file or directory"));
}

static void test_config_errors(void **state) {
  struct t *t = *state;
  char missing[128];
  /* table rules: caught when the section is applied */
  assert_int_not_equal(open_plugin(t, "dir", "relative/dir", NULL), 0);
  close_plugin(t);
  assert_int_not_equal(open_plugin(t, "dir", t->dir, "mode", "0999", NULL), 0);
  close_plugin(t);
  assert_int_not_equal(open_plugin(t, "dir", t->dir, "mode", "0440", NULL), 0);
  close_plugin(t);
  /* a missing directory fails start, naming it */
  snprintf(missing, sizeof(missing), "%s/absent", t->dir);
  assert_int_equal(open_plugin(t, "dir", missing, NULL), MG_PLUGIN_FATAL);
  assert_true(fk.logs >= 1);
  assert_non_null(strstr(fk.log[fk.logs - 1], "absent must be an existing "
                                              "directory"));
}

/* The messages of the config table, as madoguchid prints them. */
static void test_config_messages(void **state) {
  (void)state;
  struct mg_plugin_lib *lib = NULL;
  struct mg_err err = {{0}};
  assert_int_equal(
      mg_plugin_load(MG_TEST_PLUGIN_DIR "/csvexport.so", &lib, NULL), 0);
  const struct mg_plugin *p = lib->desc;
  void *ctx = calloc(1, p->ctx_size);
  struct mg_config_kv kv[] = {{(char *)"dir", (char *)"/tmp", 3},
                              {(char *)"mode", (char *)"rw-r-----", 4}};
  assert_int_not_equal(mg_config_apply(p->config, ctx, kv, 2, "box.conf", 2,
                                       "[exporter \"rpa\"]", &err),
                       0);
  assert_non_null(strstr(err.msg, "box.conf:4"));
  assert_non_null(strstr(err.msg, "mode"));
  assert_non_null(strstr(err.msg, "octal"));
  mg_config_release(p->config, ctx);
  memset(ctx, 0, p->ctx_size);
  assert_int_not_equal(
      mg_config_apply(p->config, ctx, kv, 0, "box.conf", 2, "[exporter \"rpa\"]",
                      &err),
      0);
  assert_non_null(strstr(err.msg, "dir"));
  mg_config_release(p->config, ctx);
  free(ctx);
  mg_plugin_unload(lib);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_quoting, setup, teardown),
      cmocka_unit_test_setup_teardown(test_python_reads_it, setup, teardown),
      cmocka_unit_test_setup_teardown(test_no_bom_empty_rows, setup, teardown),
      cmocka_unit_test_setup_teardown(test_reexport_replaces, setup, teardown),
      cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_same_name_in_flight, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_write_failure, setup, teardown),
      cmocka_unit_test_setup_teardown(test_config_errors, setup, teardown),
      cmocka_unit_test(test_config_messages),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
