/*
 * test_config.c — the INI reader and the key tables: good files, every
 * kind of bad input with its file:line message, the table machinery that
 * plugins share, and the generated documentation.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "log.h"

static struct mg_config *parse_ok(const char *text) {
  struct mg_config *cfg = NULL;
  struct mg_err err = {{0}};
  int rc = mg_config_parse(text, strlen(text), "t.conf", &cfg, &err);
  if (rc)
    fail_msg("unexpected error: %s", err.msg);
  assert_non_null(cfg);
  return cfg;
}

/* Parse must fail with a message containing `want`. */
static void parse_bad(const char *text, const char *want) {
  struct mg_config *cfg = NULL;
  struct mg_err err = {{0}};
  int rc = mg_config_parse(text, strlen(text), "t.conf", &cfg, &err);
  assert_int_not_equal(rc, 0);
  assert_null(cfg);
  if (!strstr(err.msg, want))
    fail_msg("message \"%s\" lacks \"%s\"", err.msg, want);
}

static void test_defaults(void **state) {
  (void)state;
  struct mg_config *cfg = parse_ok("");
  assert_string_equal(cfg->state_dir, "/var/lib/madoguchi");
  assert_string_equal(cfg->runtime_dir, "/run/madoguchi");
  assert_string_equal(cfg->listen, "0.0.0.0:8443");
  assert_string_equal(cfg->cert, "/var/lib/madoguchi/tls/cert.pem");
  assert_string_equal(cfg->key, "/var/lib/madoguchi/tls/key.pem");
  assert_int_equal(cfg->log_level, MG_LOG_INFO);
  assert_int_equal(cfg->max_body, 1024 * 1024);
  assert_int_equal(cfg->request_timeout, 10000);
  assert_int_equal(cfg->tls_min, 0);
  assert_int_equal(cfg->n_devices, 0);
  mg_config_free(cfg);
}

static void test_full_file(void **state) {
  (void)state;
  struct mg_config *cfg = parse_ok(
      "\xEF\xBB\xBF; a BOM from Excel or Notepad is fine\r\n"
      "# comment\n"
      "[daemon]\n"
      "state_dir   = /srv/mg        ; inline comment\n"
      "runtime_dir = /run/mg\n"
      "log_level = debug\n"
      "\n"
      "  [http]  \n"
      "listen = [::]:9443\n"
      "max_body = 64k\n"
      "request_timeout = 2s\n"
      "idle_timeout = 5m\n"
      "drain_timeout = 250ms\n"
      "[tls]\n"
      "cert = \"/etc/mg/cert.pem\"\n"
      "min_version = 1.3\n"
      "[reader \"counter-1\"]\n"
      "plugin = pcsc\n"
      "name = Virtual PCD 00 00\n"
      "counter = shimin-1\n"
      "[printer \"shimin\"]\n"
      "plugin = cups\n"
      "uri = ipp://192.0.2.10/ipp/print\n"
      "counters = shimin-1, shimin-2\n"
      "enabled = no\n");
  assert_string_equal(cfg->state_dir, "/srv/mg");
  assert_int_equal(cfg->log_level, MG_LOG_DEBUG);
  assert_string_equal(cfg->listen, "[::]:9443");
  assert_int_equal(cfg->max_body, 65536);
  assert_int_equal(cfg->request_timeout, 2000);
  assert_int_equal(cfg->idle_timeout, 300000);
  assert_int_equal(cfg->drain_timeout, 250);
  assert_string_equal(cfg->cert, "/etc/mg/cert.pem");
  assert_string_equal(cfg->key, "/srv/mg/tls/key.pem"); /* derived */
  assert_int_equal(cfg->tls_min, 1);
  assert_int_equal(cfg->n_devices, 2);

  struct mg_config_device *r = &cfg->devices[0];
  assert_string_equal(r->type, "reader");
  assert_string_equal(r->id, "counter-1");
  assert_string_equal(r->plugin, "pcsc");
  assert_int_equal(r->enabled, 1);
  assert_int_equal(r->counters.n, 1);
  assert_string_equal(r->counters.items[0], "shimin-1");
  /* plugin keys are kept, with their lines, for the plugin's table */
  assert_int_equal(r->n_kv, 1);
  assert_string_equal(r->kv[0].key, "name");
  assert_string_equal(r->kv[0].value, "Virtual PCD 00 00");
  assert_int_equal(r->kv[0].line, 19);

  struct mg_config_device *p = &cfg->devices[1];
  assert_int_equal(p->enabled, 0);
  assert_int_equal(p->counters.n, 2);
  assert_string_equal(p->counters.items[1], "shimin-2");
  assert_string_equal(p->kv[0].value, "ipp://192.0.2.10/ipp/print");
  mg_config_free(cfg);
}

/* G5: slip scanners are devices of their own kind. */
static void test_scanner_section(void **state) {
  (void)state;
  struct mg_config *cfg = parse_ok("[scanner \"shimin-1-scan\"]\n"
                                   "plugin = scanner\n"
                                   "counter = shimin-1\n"
                                   "device = /dev/input/event5\n");
  assert_int_equal(cfg->n_devices, 1);
  assert_string_equal(cfg->devices[0].type, "scanner");
  assert_string_equal(cfg->devices[0].counters.items[0], "shimin-1");
  assert_string_equal(cfg->devices[0].kv[0].key, "device");
  assert_int_equal(mg_config_device_kind("scanner"), MG_PLUGIN_KIND_SCANNER);
  assert_int_equal(mg_config_device_kind("scanners"), 0);
  mg_config_free(cfg);
  parse_bad("[scaner \"x\"]\n",
            "t.conf:1: unknown section type `scaner` (devices are reader, "
            "printer, pad, camera, exporter, ocr, scanner)");
}

static void test_listen_split(void **state) {
  (void)state;
  char host[64];
  int port;
  assert_int_equal(mg_config_listen_split("0.0.0.0:8443", host, sizeof(host), &port), 0);
  assert_string_equal(host, "0.0.0.0");
  assert_int_equal(port, 8443);
  assert_int_equal(mg_config_listen_split("[::1]:0", host, sizeof(host), &port), 0);
  assert_string_equal(host, "::1");
  assert_int_equal(port, 0);
  assert_int_equal(mg_config_listen_split("*:80", host, sizeof(host), &port), 0);
  assert_string_equal(host, "0.0.0.0");
  assert_int_equal(mg_config_listen_split("box.local:443", host, sizeof(host), &port), 0);
  const char *bad[] = {"8443", ":8443", "host:", "host:65536", "host:-1", "::1:80",
                       "[::1]80", "a b:1", "host:12x", ""};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    assert_int_not_equal(mg_config_listen_split(bad[i], host, sizeof(host), &port), 0);
}

static void test_bad_syntax(void **state) {
  (void)state;
  parse_bad("listen = 1\n", "t.conf:1: `key = value` before any [section]");
  parse_bad("[http\n", "t.conf:1: a section header must end with ]");
  parse_bad("[]\n", "t.conf:1: a section name must be");
  parse_bad("[Daemon]\n", "t.conf:1: a section name must be lowercase");
  parse_bad("[reader counter]\n", "t.conf:1: expected `[type \"id\"]`");
  parse_bad("[reader \"\"]\n", "t.conf:1: the section id must be a non-empty");
  parse_bad("[reader \"a b\"]\n", "t.conf:1: a section id may hold only");
  parse_bad("[reader \"a\" x]\n", "t.conf:1: unexpected text after the id");
  parse_bad("[http]\nlisten\n", "t.conf:2: expected `key = value`");
  parse_bad("[http]\n= 1\n", "t.conf:2: expected `key = value`");
  parse_bad("[http]\nListen = 1\n", "t.conf:2: a key must be lowercase");
  parse_bad("[tls]\ncert = \"/x\n", "t.conf:2: unterminated quoted value");
  parse_bad("[tls]\ncert = \"/x\" y\n", "t.conf:2: unexpected text after the quoted");
  const char nul[] = "[http]\nlisten = a\0b\n";
  struct mg_config *cfg = NULL;
  struct mg_err err = {{0}};
  assert_int_not_equal(mg_config_parse(nul, sizeof(nul) - 1, "t.conf", &cfg, &err), 0);
  assert_non_null(strstr(err.msg, "NUL byte"));
}

static void test_bad_values(void **state) {
  (void)state;
  parse_bad("[daemon]\n\ncolour = blue\n", "t.conf:3: unknown key `colour` in [daemon]");
  parse_bad("[deamon]\n", "t.conf:1: unknown section [deamon]");
  parse_bad("[widget \"x\"]\n", "t.conf:1: unknown section type `widget`");
  parse_bad("[http]\n[http]\n", "t.conf:2: section [http] already appears on line 1");
  parse_bad("[http]\nlisten = a:1\nlisten = b:2\n",
            "t.conf:3: `listen` is already set on line 2 in [http]");
  parse_bad("[daemon]\nstate_dir = rel/path\n",
            "t.conf:2: `state_dir` in [daemon] must be an absolute path (got \"rel/path\")");
  parse_bad("[daemon]\nlog_level = loud\n",
            "`log_level` in [daemon] must be one of error|warning|notice|info|debug");
  parse_bad("[http]\nlisten = 8443\n", "t.conf:2: `listen` in [http] must be HOST:PORT");
  parse_bad("[http]\nmax_body = 12 k\n", "`max_body` in [http] must be a size");
  parse_bad("[http]\nmax_body = 1T\n", "must be a size");
  parse_bad("[http]\nmax_body = 10\n", "`max_body` in [http] must be between 1024 and");
  parse_bad("[http]\nrequest_timeout = -5s\n", "must be a duration");
  parse_bad("[http]\nrequest_timeout = 5 s\n", "must be a duration");
  parse_bad("[http]\nidle_timeout = 2w\n", "must be a duration");
  parse_bad("[visits]\nclose_at = 25:00\n", "HH:MM");
  parse_bad("[visits]\nretention = 3651d\n", "between");
  parse_bad("[http]\nmax_connections = many\n", "must be a whole number");
  parse_bad("[http]\nmax_connections = 99999999999999999999\n", "must be a whole number");
  parse_bad("[http]\nmax_connections = 0\n", "must be between 1 and 65536");
  parse_bad("[tls]\nmin_version = 1.1\n", "`min_version` in [tls] must be one of 1.2|1.3");
  parse_bad("[tls]\nkey = key.pem\n", "`key` in [tls] must be an absolute path");
  parse_bad("[reader \"r\"]\nname = x\n", "t.conf:1: [reader \"r\"] needs `plugin`");
  parse_bad("[reader \"r\"]\nplugin = pcsc\nenabled = maybe\n",
            "t.conf:3: `enabled` in [reader \"r\"] must be true or false");
  parse_bad("[reader \"r\"]\nplugin = pcsc\ncounters = a,,b\n",
            "has an empty item in its comma separated list");
  parse_bad("[reader \"r\"]\nplugin = x\n[printer \"r\"]\nplugin = y\n",
            "t.conf:3: device id \"r\" is already used on line 1");
}

static void test_load_file(void **state) {
  (void)state;
  char path[] = "/tmp/mg-test-config-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  const char *text = "[http]\nlisten = 127.0.0.1:0\n";
  assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
  close(fd);
  struct mg_config *cfg = NULL;
  struct mg_err err = {{0}};
  assert_int_equal(mg_config_load(path, &cfg, &err), 0);
  assert_string_equal(cfg->listen, "127.0.0.1:0");
  assert_string_equal(cfg->path, path);
  mg_config_free(cfg);
  unlink(path);
  cfg = NULL;
  assert_int_equal(mg_config_load(path, &cfg, &err), -ENOENT);
  assert_non_null(strstr(err.msg, "cannot open"));
  assert_null(cfg);
}

/* The table machinery as a plugin uses it. */
struct plug {
  char *uri;
  int64_t retries;
  int64_t timeout;
  int64_t buf;
  int verbose;
  int mode;
  struct mg_config_list tags;
};

static const char *no_x(const void *stored) {
  const char *s = *(char *const *)stored;
  return strchr(s, 'x') ? "must not contain x" : NULL;
}

static const struct mg_config_item plug_items[] = {
    {MG_CFG_STR, "uri", NULL, offsetof(struct plug, uri), MG_CFG_REQUIRED, 0, 0,
     NULL, no_x, "where"},
    {MG_CFG_INT, "retries", "3", offsetof(struct plug, retries), 0, 0, 10, NULL,
     NULL, "how often"},
    {MG_CFG_DURATION, "timeout", "1s", offsetof(struct plug, timeout), 0, 0, 0,
     NULL, NULL, "how long"},
    {MG_CFG_SIZE, "buf", "4k", offsetof(struct plug, buf), 0, 0, 0, NULL, NULL,
     "how big"},
    {MG_CFG_BOOL, "verbose", "off", offsetof(struct plug, verbose), 0, 0, 0, NULL,
     NULL, "chatty"},
    {MG_CFG_ENUM, "mode", "b", offsetof(struct plug, mode), 0, 0, 0, "a|b|c",
     NULL, "which"},
    {MG_CFG_LIST, "tags", "", offsetof(struct plug, tags), 0, 0, 0, NULL, NULL,
     "labels"},
    {0, NULL, NULL, 0, 0, 0, 0, NULL, NULL, NULL}};

static void test_table_apply(void **state) {
  (void)state;
  struct plug p;
  struct mg_err err = {{0}};
  struct mg_config_kv kv[] = {{"uri", "ipp://h/p", 4},
                              {"retries", "7", 5},
                              {"verbose", "YES", 6},
                              {"mode", "c", 7},
                              {"tags", "a, b ,c", 8}};
  memset(&p, 0, sizeof(p));
  assert_int_equal(mg_config_apply(plug_items, &p, kv, 5, "f", 3, "[x \"y\"]", &err), 0);
  assert_string_equal(p.uri, "ipp://h/p");
  assert_int_equal(p.retries, 7);
  assert_int_equal(p.timeout, 1000); /* default */
  assert_int_equal(p.buf, 4096);
  assert_int_equal(p.verbose, 1);
  assert_int_equal(p.mode, 2);
  assert_int_equal(p.tags.n, 3);
  assert_string_equal(p.tags.items[1], "b");
  mg_config_release(plug_items, &p);
  assert_null(p.uri);
  assert_int_equal(p.tags.n, 0);

  struct mg_config_kv bad1[] = {{"uri", "ipp://x", 9}};
  memset(&p, 0, sizeof(p));
  assert_int_equal(mg_config_apply(plug_items, &p, bad1, 1, "f", 3, "[x \"y\"]", &err), -EINVAL);
  assert_string_equal(err.msg,
                      "f:9: `uri` in [x \"y\"] must not contain x (got \"ipp://x\")");
  mg_config_release(plug_items, &p);

  struct mg_config_kv bad2[] = {{"retries", "11", 4}};
  memset(&p, 0, sizeof(p));
  assert_int_equal(mg_config_apply(plug_items, &p, bad2, 1, "f", 3, "[x \"y\"]", &err), -EINVAL);
  assert_non_null(strstr(err.msg, "f:4: `retries` in [x \"y\"] must be between 0 and 10"));
  mg_config_release(plug_items, &p);

  memset(&p, 0, sizeof(p));
  assert_int_equal(mg_config_apply(plug_items, &p, NULL, 0, "f", 3, "[x \"y\"]", &err), -EINVAL);
  assert_string_equal(err.msg, "f:3: [x \"y\"] needs `uri`");
  mg_config_release(plug_items, &p);

  struct mg_config_item unknown_type[] = {
      {99, "k", NULL, 0, 0, 0, 0, NULL, NULL, "?"},
      {0, NULL, NULL, 0, 0, 0, 0, NULL, NULL, NULL}};
  struct mg_config_kv kv3[] = {{"k", "v", 2}};
  char blob[16];
  assert_int_equal(mg_config_apply(unknown_type, blob, kv3, 1, "f", 1, "[s]", &err), -EINVAL);
  assert_non_null(strstr(err.msg, "newer ABI"));
}

static void test_doc(void **state) {
  (void)state;
  struct mg_buf b;
  mg_buf_init(&b);
  mg_config_doc(&b);
  assert_false(b.oom);
  /* every key of every table is in the reference */
  const char *keys[] = {"`state_dir`", "`runtime_dir`", "`plugin_dir`", "`web_dir`",
                        "`log_level`", "`ctl_group`", "`listen`", "`max_body`",
                        "`request_timeout`", "`idle_timeout`", "`max_connections`",
                        "`drain_timeout`", "`static_max_age`", "`cert`", "`key`",
                        "`min_version`", "`plugin`", "`counter`", "`counters`",
                        "`enabled`"};
  for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
    if (!strstr(b.data, keys[i]))
      fail_msg("doc lacks %s", keys[i]);
  assert_non_null(strstr(b.data, "Reloaded by SIGHUP"));
  mg_buf_free(&b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_defaults),    cmocka_unit_test(test_full_file),
      cmocka_unit_test(test_listen_split), cmocka_unit_test(test_bad_syntax),
      cmocka_unit_test(test_bad_values),  cmocka_unit_test(test_load_file),
      cmocka_unit_test(test_table_apply), cmocka_unit_test(test_doc),
      cmocka_unit_test(test_scanner_section),
  };
  mg_log_set_level(MG_LOG_ERR);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
