/*
 * madoctl — the field technician's command line.  Talks to madoguchid over
 * its control socket (core/ctl.h); `config check` works without a daemon.
 * Exit codes: 0 done, 1 failed (daemon said no, daemon unreachable, bad
 * config), 2 usage error.  Every failure is one line on stderr.
 */
#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "auth.h"
#include "config.h"
#include "json.h"
#include "log.h"
#include "pack.h"
#include "plugin_host.h"
#include "version.h"

#define DEFAULT_SOCKET "/run/madoguchi/ctl.sock"

struct opts {
  const char *socket;
  const char *printer; /* print test --printer NAME */
  const char *name, *role, *valid_from, *valid_until; /* user add */
  int password_stdin;
  const char *reader;  /* card read --reader NAME */
  int pin_stdin, card_number_stdin;
  const char *limit, *object; /* audit log */
  int json;
  const char *url, *city, *box; /* sync enroll */
  int code_stdin;
};

struct command {
  const char *name;
  const char *args;  /* for usage */
  const char *help;
  int nargs;
  int (*run)(const struct opts *o, char **argv);
};

static int cmd_status(const struct opts *o, char **argv);
static int cmd_plugins(const struct opts *o, char **argv);
static int cmd_devices(const struct opts *o, char **argv);
static int cmd_config_check(const struct opts *o, char **argv);
static int cmd_log_level(const struct opts *o, char **argv);
static int cmd_reload(const struct opts *o, char **argv);
static int cmd_print_test(const struct opts *o, char **argv);
static int cmd_pack_verify(const struct opts *o, char **argv);
static int cmd_pack_status(const struct opts *o, char **argv);
static int cmd_pack_log(const struct opts *o, char **argv);
static int cmd_pack_pull(const struct opts *o, char **argv);
static int cmd_pack_rollback(const struct opts *o, char **argv);
static int cmd_user_add(const struct opts *o, char **argv);
static int cmd_user_hash(const struct opts *o, char **argv);
static int cmd_user_list(const struct opts *o, char **argv);
static int cmd_user_del(const struct opts *o, char **argv);
static int cmd_user_unlock(const struct opts *o, char **argv);
static int cmd_audit_verify(const struct opts *o, char **argv);
static int cmd_audit_log(const struct opts *o, char **argv);
static int cmd_visits_purge(const struct opts *o, char **argv);
static int cmd_tablet_list(const struct opts *o, char **argv);
static int cmd_tablet_del(const struct opts *o, char **argv);
static int cmd_address_import(const struct opts *o, char **argv);
static int cmd_address_lookup(const struct opts *o, char **argv);
static int cmd_card_read(const struct opts *o, char **argv);
static int cmd_sync_status(const struct opts *o, char **argv);
static int cmd_sync_now(const struct opts *o, char **argv);
static int cmd_sync_pause(const struct opts *o, char **argv);
static int cmd_sync_resume(const struct opts *o, char **argv);
static int cmd_sync_enroll(const struct opts *o, char **argv);

static const struct command commands[] = {
    {"status", "", "daemon state: version, uptime, listener, database, devices", 0,
     cmd_status},
    {"plugins", "", "device plugins loaded, with their ABI and version", 0,
     cmd_plugins},
    {"devices", "", "configured devices, their counters and state", 0, cmd_devices},
    {"config check", "FILE",
     "check a configuration file, plugins' keys included (no daemon needed)", 1,
     cmd_config_check},
    {"log-level", "LEVEL",
     "set the log level (error, warning, notice, info, debug) until reload", 1,
     cmd_log_level},
    {"reload", "", "re-read the configuration file (like SIGHUP)", 0, cmd_reload},
    {"print test", "--printer NAME",
     "print a test page naming this box and the printer", 0, cmd_print_test},
    {"pack status", "", "the active procedure pack: commit, signer, when", 0,
     cmd_pack_status},
    {"pack log", "", "the active and the kept pack releases, newest first", 0,
     cmd_pack_log},
    {"pack pull", "", "fetch, check and activate the pack now", 0, cmd_pack_pull},
    {"pack rollback", "", "go back to the previous pack release", 0,
     cmd_pack_rollback},
    {"pack verify", "DIR",
     "check a pack folder against docs/packs.md (no daemon needed)", 1,
     cmd_pack_verify},
    {"user add", "ID --name NAME --role ROLE [--valid-from DATE] "
     "[--valid-until DATE] --password-stdin",
     "add a staff account; the password is read from stdin", 1, cmd_user_add},
    {"user hash", "--password-stdin",
     "print a password hash for [auth] users_file (no daemon needed)", 0,
     cmd_user_hash},
    {"user list", "", "staff accounts (never their passwords)", 0, cmd_user_list},
    {"user del", "ID", "delete a staff account and its sessions", 1, cmd_user_del},
    {"user unlock", "ID", "lift a lockout after wrong passwords", 1,
     cmd_user_unlock},
    {"audit verify", "", "check the audit log's hash chain, row by row", 0,
     cmd_audit_verify},
    {"audit log", "[--limit N] [--object OBJ]",
     "audit records, newest first (default 50, at most 10000)", 0, cmd_audit_log},
    {"tablet list", "", "tablets registered to counters", 0, cmd_tablet_list},
    {"tablet del", "ID", "remove a tablet's registration (its staff can no "
     "longer log in on it)", 1, cmd_tablet_del},
    {"address import", "FILE",
     "import Japan Post's KEN_ALL.CSV or utf_ken_all.csv as the address "
     "dictionary (replaces the old one only when the whole file is good)",
     1, cmd_address_import},
    {"address lookup", "POSTAL_CODE",
     "the addresses of a postal code, with the pack's district", 1,
     cmd_address_lookup},
    {"card read", "[--reader NAME] --pin-stdin | --card-number-stdin",
     "read the ID card on a reader (a technician's test): the PIN, or a "
     "residence card's number, is read from stdin; a wrong PIN is never "
     "retried and the 個人番号 shows as its last 4 digits", 0, cmd_card_read},
    {"visits purge", "",
     "close cases past close of business and purge those past retention now",
     0, cmd_visits_purge},
    {"sync status", "", "the outbox to the city's tenant: queue depth, "
     "oldest age, last success, last error, circuit", 0, cmd_sync_status},
    {"sync now", "", "send what is due now (and show the status)", 0,
     cmd_sync_now},
    {"sync pause", "", "stop sending to the tenant (kept across restarts; "
     "applications still queue)", 0, cmd_sync_pause},
    {"sync resume", "", "send again, at once", 0, cmd_sync_resume},
    {"sync enroll", "--url URL --city CODE --box NAME --code-stdin",
     "enrol this box with the tenant: keys are made, the one-time code "
     "(read from stdin) gets the box its client certificate", 0,
     cmd_sync_enroll},
};
#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *f) {
  fprintf(f, "usage: madoctl [--socket PATH] [--json] COMMAND [ARGS]\n\n"
             "commands:\n");
  for (size_t i = 0; i < N_COMMANDS; i++)
    fprintf(f, "  %-20s %s\n",
            commands[i].args[0] ? commands[i].name : commands[i].name,
            commands[i].help);
  fprintf(f, "\noptions:\n"
             "  --socket PATH  control socket (default %s, or $MADOCTL_SOCKET)\n"
             "  --json         print the answer as JSON\n"
             "  --help         this text; `madoctl COMMAND --help` for one "
             "command\n"
             "  --version      print the version\n",
          DEFAULT_SOCKET);
}

static void command_usage(const struct command *c, FILE *f) {
  fprintf(f, "usage: madoctl [--socket PATH] [--json] %s%s%s\n\n%s\n", c->name,
          c->args[0] ? " " : "", c->args, c->help);
}

/* ---------------------------------------------------------------------- */
/* Talking to the daemon                                                   */

/* Send one request and return the parsed "result" (*doc owns it). */
static int call_args(const struct opts *o, const char *cmd,
                     const char *const *args, size_t nargs, struct mg_json **doc,
                     const struct mg_json **result) {
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  struct mg_buf req, resp;
  struct mg_jw w;
  struct mg_json_error jerr;
  char chunk[4096];
  int fd = -1, rc = 1;
  ssize_t n;

  *doc = NULL;
  mg_buf_init(&req);
  mg_buf_init(&resp);
  if (strlen(o->socket) >= sizeof(sa.sun_path)) {
    fprintf(stderr, "madoctl: socket path too long: %s\n", o->socket);
    goto out;
  }
  strcpy(sa.sun_path, o->socket);
  fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
    fprintf(stderr, "madoctl: cannot reach madoguchid at %s: %s (is it running?)\n",
            o->socket, strerror(errno));
    goto out;
  }
  mg_jw_init(&w, &req);
  mg_jw_obj(&w);
  mg_jw_kstr(&w, "cmd", cmd);
  mg_jw_key(&w, "args");
  mg_jw_arr(&w);
  for (size_t i = 0; i < nargs; i++)
    mg_jw_str(&w, args[i]);
  mg_jw_arr_end(&w);
  mg_jw_obj_end(&w);
  mg_buf_putc(&req, '\n');
  if (req.oom || write(fd, req.data, req.len) != (ssize_t)req.len) {
    fprintf(stderr, "madoctl: cannot send to %s: %s\n", o->socket, strerror(errno));
    goto out;
  }
  while ((n = read(fd, chunk, sizeof(chunk))) > 0 && resp.len < (16u << 20))
    mg_buf_append(&resp, chunk, (size_t)n);
  if (n < 0 || resp.oom || resp.len == 0) {
    fprintf(stderr, "madoctl: madoguchid closed the connection without an answer\n");
    goto out;
  }
  if (mg_json_parse(resp.data, resp.len, NULL, doc, &jerr)) {
    fprintf(stderr, "madoctl: unreadable answer from madoguchid: %s\n", jerr.msg);
    goto out;
  }
  if (mg_json_get_bool(*doc, "ok") != 1) {
    const struct mg_json *e = mg_json_get(*doc, "error");
    fprintf(stderr, "madoctl: %s: %s\n", cmd,
            mg_json_get_str(e, "message") ? mg_json_get_str(e, "message")
                                          : "the daemon refused");
    goto out;
  }
  *result = mg_json_get(*doc, "result");
  rc = *result ? 0 : 1;
out:
  if (fd >= 0)
    close(fd);
  if (req.data) /* may hold a password */
    memset(req.data, 0, req.len);
  mg_buf_free(&req);
  mg_buf_free(&resp);
  return rc;
}

static int call(const struct opts *o, const char *cmd, const char *arg,
                struct mg_json **doc, const struct mg_json **result) {
  return call_args(o, cmd, &arg, arg ? 1 : 0, doc, result);
}

/* Print a JSON value compactly (for --json). */
static void print_json(const struct mg_json *v, struct mg_jw *w) {
  switch (v->type) {
  case MG_JSON_NULL: mg_jw_null(w); break;
  case MG_JSON_FALSE: mg_jw_bool(w, 0); break;
  case MG_JSON_TRUE: mg_jw_bool(w, 1); break;
  case MG_JSON_NUMBER:
    if (v->u.num.is_int)
      mg_jw_int(w, v->u.num.i);
    else
      mg_jw_double(w, v->u.num.d);
    break;
  case MG_JSON_STRING: mg_jw_strn(w, v->u.str.s, v->u.str.len); break;
  case MG_JSON_ARRAY:
    mg_jw_arr(w);
    for (size_t i = 0; i < v->u.arr.n; i++)
      print_json(v->u.arr.items[i], w);
    mg_jw_arr_end(w);
    break;
  case MG_JSON_OBJECT:
    mg_jw_obj(w);
    for (size_t i = 0; i < v->u.obj.n; i++) {
      mg_jw_key(w, v->u.obj.members[i].key);
      print_json(v->u.obj.members[i].value, w);
    }
    mg_jw_obj_end(w);
    break;
  }
}

static void emit_json(const struct mg_json *v) {
  struct mg_buf b;
  struct mg_jw w;
  mg_buf_init(&b);
  mg_jw_init(&w, &b);
  print_json(v, &w);
  printf("%s\n", b.data ? b.data : "null");
  mg_buf_free(&b);
}

static const char *str_or(const struct mg_json *o, const char *k, const char *dflt) {
  const char *s = mg_json_get_str(o, k);
  return s ? s : dflt;
}

static long long int_or(const struct mg_json *o, const char *k) {
  int64_t v = 0;
  mg_json_get_int(o, k, &v);
  return (long long)v;
}

/* Run a command whose answer needs no arguments and a custom printer. */
static int simple(const struct opts *o, const char *cmd, const char *arg,
                  void (*human)(const struct mg_json *r)) {
  struct mg_json *doc = NULL;
  const struct mg_json *r = NULL;
  int rc = call(o, cmd, arg, &doc, &r);
  if (!rc) {
    if (o->json)
      emit_json(r);
    else
      human(r);
  }
  mg_json_free(doc);
  return rc;
}

static void human_status(const struct mg_json *r) {
  const struct mg_json *http = mg_json_get(r, "http");
  const struct mg_json *st = mg_json_get(r, "store");
  const struct mg_json *pl = mg_json_get(r, "plugins");
  long long up = int_or(r, "uptime_s");
  printf("madoguchid %s (pid %lld) %s, up %lldd %02lld:%02lld:%02lld\n",
         str_or(r, "version", "?"), int_or(r, "pid"), str_or(r, "state", "?"),
         up / 86400, up / 3600 % 24, up / 60 % 60, up % 60);
  printf("box:        %s\n", str_or(r, "box_id", "?"));
  printf("config:     %s\n", str_or(r, "config", "?"));
  printf("listen:     %s (port %lld), %lld WebSocket client(s)\n",
         str_or(http, "listen", "?"), int_or(http, "port"),
         int_or(http, "websocket_clients"));
  printf("tls:        %s\n            SHA-256 %s\n", str_or(http, "tls_cert", "?"),
         str_or(http, "tls_fingerprint_sha256", "?"));
  printf("database:   %s/madoguchi.db (schema %lld of %lld)\n",
         str_or(st, "state_dir", "?"), int_or(st, "schema"),
         int_or(st, "schema_latest"));
  printf("plugins:    %lld loaded, %lld device(s) failed\n", int_or(pl, "loaded"),
         int_or(pl, "failed_devices"));
  printf("pack:       %s\n", str_or(mg_json_get(r, "pack"), "state", "?"));
  {
    const struct mg_json *ad = mg_json_get(r, "address");
    if (ad && mg_json_get_str(ad, "imported_at"))
      printf("addresses:  %lld (imported %s)%s\n", int_or(ad, "rows"),
             str_or(ad, "imported_at", "?"),
             mg_json_get_bool(ad, "importing") == 1 ? ", importing" : "");
    else if (ad)
      printf("addresses:  none imported%s\n",
             mg_json_get_bool(ad, "importing") == 1 ? " (importing)" : "");
  }
  printf("log level:  %s\n", str_or(r, "log_level", "?"));
  if (mg_json_get_bool(r, "previous_run_clean") == 0)
    printf("warning:    the previous run did not stop cleanly\n");
}

static void human_plugins(const struct mg_json *r) {
  if (!r || r->type != MG_JSON_ARRAY || r->u.arr.n == 0) {
    printf("no plugins loaded\n");
    return;
  }
  printf("%-16s %-10s %-14s %-6s %s\n", "NAME", "VERSION", "KIND", "ABI", "FILE");
  for (size_t i = 0; i < r->u.arr.n; i++) {
    const struct mg_json *p = r->u.arr.items[i];
    printf("%-16s %-10s %-14s %-6s %s\n", str_or(p, "name", "?"),
           str_or(p, "version", "?"), str_or(p, "kind", "?"), str_or(p, "abi", "?"),
           str_or(p, "path", "?"));
  }
}

static void human_devices(const struct mg_json *r) {
  if (!r || r->type != MG_JSON_ARRAY || r->u.arr.n == 0) {
    printf("no devices configured\n");
    return;
  }
  printf("%-16s %-9s %-14s %-10s %s\n", "ID", "TYPE", "PLUGIN", "STATE", "COUNTERS");
  for (size_t i = 0; i < r->u.arr.n; i++) {
    const struct mg_json *d = r->u.arr.items[i];
    const struct mg_json *cs = mg_json_get(d, "counters");
    char counters[256] = "";
    for (size_t k = 0; cs && cs->type == MG_JSON_ARRAY && k < cs->u.arr.n; k++) {
      const struct mg_json *s = cs->u.arr.items[k];
      if (s->type == MG_JSON_STRING) {
        size_t len = strlen(counters);
        snprintf(counters + len, sizeof(counters) - len, "%s%s", k ? "," : "",
                 s->u.str.s);
      }
    }
    printf("%-16s %-9s %-14s %-10s %s\n", str_or(d, "id", "?"), str_or(d, "type", "?"),
           str_or(d, "plugin", "?"), str_or(d, "state", "?"), counters);
    if (mg_json_get_str(d, "error"))
      printf("  error: %s\n", mg_json_get_str(d, "error"));
  }
}

static void human_log_level(const struct mg_json *r) {
  printf("log level: %s\n", str_or(r, "log_level", "?"));
}

static void human_reload(const struct mg_json *r) {
  printf("configuration reloaded (log level %s)\n", str_or(r, "log_level", "?"));
}

static int cmd_status(const struct opts *o, char **argv) {
  (void)argv;
  return simple(o, "status", NULL, human_status);
}
static int cmd_plugins(const struct opts *o, char **argv) {
  (void)argv;
  return simple(o, "plugins", NULL, human_plugins);
}
static int cmd_devices(const struct opts *o, char **argv) {
  (void)argv;
  return simple(o, "devices", NULL, human_devices);
}
static int cmd_log_level(const struct opts *o, char **argv) {
  if (mg_log_level_parse(argv[0]) < 0) {
    fprintf(stderr, "madoctl: log-level: \"%s\" is not one of error, warning, "
                    "notice, info, debug\n", argv[0]);
    return 2;
  }
  return simple(o, "log-level", argv[0], human_log_level);
}
static int cmd_reload(const struct opts *o, char **argv) {
  (void)argv;
  return simple(o, "reload", NULL, human_reload);
}

static void human_print(const struct mg_json *r) {
  int64_t job;
  const char *state = mg_json_get_str(r, "state");
  if (mg_json_get_int(r, "job", &job) == 0)
    printf("test page sent (job %lld%s%s)\n", (long long)job,
           state ? ", " : "", state ? state : "");
  else
    printf("test page sent\n");
}

static int cmd_print_test(const struct opts *o, char **argv) {
  (void)argv;
  if (!o->printer) {
    fprintf(stderr, "madoctl: print test needs --printer NAME (see madoctl devices)\n");
    return 2;
  }
  return simple(o, "print-test", o->printer, human_print);
}

static void human_release(const struct mg_json *r, const char *mark) {
  printf("%s %.12s  %s  signed by %s (%s)\n", mark, str_or(r, "commit", "?"),
         str_or(r, "activated_at", "?"), str_or(r, "signer", "?"),
         str_or(r, "fingerprint", "?"));
}

static void human_pack(const struct mg_json *r) {
  const struct mg_json *p = mg_json_get(r, "pack");
  const struct mg_json *lp = mg_json_get(r, "last_pull");
  const struct mg_json *src = mg_json_get(r, "source");
  if (p) { /* the answer of pull and rollback */
    printf("%s\n", mg_json_get_bool(r, "changed") == 1 ? "activated a new release"
                                                        : "no change");
    r = p;
  }
  if (strcmp(str_or(r, "state", "none"), "active") != 0)
    printf("no pack is active\n");
  else
    human_release(r, "active:");
  if (src && mg_json_get_str(src, "url"))
    printf("source:  %s (branch %s)\n", mg_json_get_str(src, "url"),
           str_or(src, "branch", "?"));
  if (lp && lp->type == MG_JSON_OBJECT)
    printf("last pull: %s %s: %s\n", str_or(lp, "at", "?"),
           mg_json_get_bool(lp, "ok") == 1 ? "ok" : "FAILED",
           str_or(lp, "message", ""));
  const struct mg_json *prev = mg_json_get(r, "previous");
  if (prev && prev->type == MG_JSON_ARRAY && prev->u.arr.n) {
    printf("kept for rollback:\n");
    for (size_t i = 0; i < prev->u.arr.n; i++)
      human_release(prev->u.arr.items[i], " ");
  }
}

static void human_pack_log(const struct mg_json *r) {
  const struct mg_json *prev = mg_json_get(r, "previous");
  if (strcmp(str_or(r, "state", "none"), "active") == 0)
    human_release(r, "*");
  for (size_t i = 0; prev && prev->type == MG_JSON_ARRAY && i < prev->u.arr.n; i++)
    human_release(prev->u.arr.items[i], " ");
  if (strcmp(str_or(r, "state", "none"), "active") != 0 && (!prev || !prev->u.arr.n))
    printf("no pack release on this box\n");
}

static int cmd_pack_status(const struct opts *o, char **argv) {
  (void)argv;
  return simple(o, "pack-status", NULL, human_pack);
}
static int cmd_pack_log(const struct opts *o, char **argv) {
  (void)argv;
  return simple(o, "pack-status", NULL, human_pack_log);
}
static int cmd_pack_pull(const struct opts *o, char **argv) {
  (void)argv;
  return simple(o, "pack-pull", NULL, human_pack);
}
static int cmd_pack_rollback(const struct opts *o, char **argv) {
  (void)argv;
  return simple(o, "pack-rollback", NULL, human_pack);
}

/* ---------------------------------------------------------------------- */
/* Users                                                                   */

static void human_user(const struct mg_json *u) {
  const char *from = mg_json_get_str(u, "valid_from");
  const char *until = mg_json_get_str(u, "valid_until");
  const char *locked = mg_json_get_str(u, "locked_until");
  char valid[40];
  snprintf(valid, sizeof(valid), "%s..%s", from ? from : "", until ? until : "");
  printf("%-16s %-14s %-24s %-22s %s\n", str_or(u, "id", "?"), str_or(u, "role", "?"),
         str_or(u, "name", "?"), strcmp(valid, "..") ? valid : "always",
         locked ? locked : "-");
}

static void human_users(const struct mg_json *r) {
  if (!r || r->type != MG_JSON_ARRAY || r->u.arr.n == 0) {
    printf("no users\n");
    return;
  }
  printf("%-16s %-14s %-24s %-22s %s\n", "ID", "ROLE", "NAME", "VALID",
         "LOCKED UNTIL");
  for (size_t i = 0; i < r->u.arr.n; i++)
    human_user(r->u.arr.items[i]);
}

static void human_added(const struct mg_json *r) {
  printf("user %s added\n", str_or(r, "id", "?"));
}
static void human_done(const struct mg_json *r) {
  printf("user %s %s\n", str_or(r, "id", "?"),
         mg_json_get_bool(r, "deleted") == 1 ? "deleted" : "unlocked");
}

/* The password: one line on stdin (never argv).  0, or 2 with a message. */
static int read_password(const char *what, char pw[256]) {
  size_t n = fread(pw, 1, 255, stdin);
  pw[n] = '\0';
  if (n == 255 && !feof(stdin)) {
    fprintf(stderr, "madoctl: %s: the password is too long\n", what);
    return 2;
  }
  /* one line: drop the newline echo or a here-string adds */
  pw[strcspn(pw, "\r\n")] = '\0';
  if (strlen(pw) < 8) {
    fprintf(stderr, "madoctl: %s: the password needs at least 8 characters\n", what);
    return 2;
  }
  return 0;
}

/* A hash for [auth] users_file; runs here, no daemon needed. */
static int cmd_user_hash(const struct opts *o, char **argv) {
  char pw[256], hash[MG_AUTH_HASH_MAX];
  int rc;
  (void)argv;
  if (!o->password_stdin) {
    fprintf(stderr, "madoctl: user hash needs --password-stdin (the password "
                    "is never taken from the command line)\n");
    return 2;
  }
  if ((rc = read_password("user hash", pw)) == 0) {
    if (mg_auth_hash_password(pw, hash) == 0) {
      printf("%s\n", hash);
    } else {
      fprintf(stderr, "madoctl: user hash: cannot hash\n");
      rc = 1;
    }
  }
  OPENSSL_cleanse(pw, sizeof(pw));
  return rc;
}

static int cmd_user_add(const struct opts *o, char **argv) {
  char pw[256];
  int rc = 1;
  if (!o->name || !o->role || !o->password_stdin) {
    fprintf(stderr, "madoctl: user add needs --name, --role and --password-stdin "
                    "(the password is never taken from the command line)\n");
    return 2;
  }
  if ((rc = read_password("user add", pw)))
    goto out;
  {
    const char *args[6] = {argv[0], o->name, o->role,
                           o->valid_from ? o->valid_from : "",
                           o->valid_until ? o->valid_until : "", pw};
    struct mg_json *doc = NULL;
    const struct mg_json *r = NULL;
    rc = call_args(o, "user-add", args, 6, &doc, &r);
    if (!rc) {
      if (o->json)
        emit_json(r);
      else
        human_added(r);
    }
    mg_json_free(doc);
  }
out:
  OPENSSL_cleanse(pw, sizeof(pw));
  return rc;
}
static int cmd_user_list(const struct opts *o, char **argv) {
  (void)argv;
  return simple(o, "user-list", NULL, human_users);
}
static int cmd_user_del(const struct opts *o, char **argv) {
  return simple(o, "user-del", argv[0], human_done);
}
static int cmd_user_unlock(const struct opts *o, char **argv) {
  return simple(o, "user-unlock", argv[0], human_done);
}

/* ---------------------------------------------------------------------- */
/* ID cards                                                                */

static void human_card(const struct mg_json *r) {
  static const char *const rows[][2] = {
      {"type", "type"},         {"name", "name"},
      {"kana", "kana"},         {"address", "address"},
      {"birth_date", "birth date"}, {"sex", "sex"},
      {"card_kind", "card kind"}, {"expiry", "expiry"}};
  for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
    if (mg_json_get_str(r, rows[i][0]))
      printf("%-12s %s\n", rows[i][1], mg_json_get_str(r, rows[i][0]));
  if (mg_json_get_str(r, "my_number_last4"))
    printf("%-12s ********%s (check digit %s)\n", "my number",
           mg_json_get_str(r, "my_number_last4"),
           mg_json_get_bool(r, "my_number_valid") == 1 ? "valid" : "INVALID");
  if (int_or(r, "gaiji") > 0)
    printf("%-12s %lld character(s) not in JIS X 0208: staff confirm them\n",
           "gaiji", int_or(r, "gaiji"));
  if (mg_json_get(r, "tries_left") && int_or(r, "tries_left") >= 0)
    printf("%-12s %lld\n", "tries left", int_or(r, "tries_left"));
  printf("%-12s %lld APDUs, %lld ms\n", "read", int_or(r, "apdus"),
         int_or(r, "ms"));
}

/* The PIN (4 digits) or a residence card's number (12 characters): one
 * line on stdin, never argv.  0, or 2 with a message. */
static int read_secret(const char *what, char buf[64]) {
  size_t n = fread(buf, 1, 63, stdin);
  buf[n] = '\0';
  buf[strcspn(buf, "\r\n")] = '\0';
  if (!*buf) {
    fprintf(stderr, "madoctl: card read: no %s on stdin\n", what);
    return 2;
  }
  return 0;
}

static int cmd_card_read(const struct opts *o, char **argv) {
  char secret[64];
  int rc;
  (void)argv;
  if (o->pin_stdin == o->card_number_stdin) {
    fprintf(stderr, "madoctl: card read needs --pin-stdin (My Number card, "
                    "licence) or --card-number-stdin (residence card); a PIN "
                    "is never taken from the command line\n");
    return 2;
  }
  if ((rc = read_secret(o->pin_stdin ? "PIN" : "card number", secret)))
    goto out;
  {
    /* a licence with no PIN set reads with the PIN "****" */
    const char *pin = o->pin_stdin && strcmp(secret, "****") ? secret : "";
    const char *args[3] = {o->reader ? o->reader : "", pin,
                           o->card_number_stdin ? secret : ""};
    struct mg_json *doc = NULL;
    const struct mg_json *r = NULL;
    rc = call_args(o, "card-read", args, 3, &doc, &r);
    if (!rc) {
      if (o->json)
        emit_json(r);
      else
        human_card(r);
    }
    mg_json_free(doc);
  }
out:
  OPENSSL_cleanse(secret, sizeof(secret));
  return rc;
}

/* ---------------------------------------------------------------------- */
/* Audit log                                                               */

#define AUDIT_DEFAULT_LIMIT "50"

static void human_audit_verify(const struct mg_json *r) {
  printf("audit log intact: %lld rows\n", int_or(r, "rows"));
}

/* One table cell: control characters (a detail may hold newlines) would
 * break the table, so they print as spaces. */
static void print_cell(const char *s) {
  for (; *s; s++)
    putchar((unsigned char)*s < 0x20 || *s == 0x7f ? ' ' : *s);
}

static void human_audit_log(const struct mg_json *r) {
  const struct mg_json *es = mg_json_get(r, "entries");
  if (!es || es->type != MG_JSON_ARRAY || es->u.arr.n == 0) {
    printf("no audit records\n");
    return;
  }
  printf("%-6s %-20s %-12s %-10s %-14s %-24s %s\n", "SEQ", "AT", "ACTOR",
         "COUNTER", "ACTION", "OBJECT", "DETAIL");
  for (size_t i = 0; i < es->u.arr.n; i++) {
    const struct mg_json *e = es->u.arr.items[i];
    printf("%-6lld %-20s %-12s %-10s %-14s %-24s ", int_or(e, "seq"),
           str_or(e, "at", "?"), str_or(e, "actor", "?"), str_or(e, "counter", "?"),
           str_or(e, "action", "?"), str_or(e, "object", "?"));
    print_cell(str_or(e, "detail", ""));
    putchar('\n');
  }
}

static void human_tablets(const struct mg_json *r) {
  if (!r || r->type != MG_JSON_ARRAY || r->u.arr.n == 0) {
    printf("no tablets\n");
    return;
  }
  printf("%-14s %-12s %-20s %-24s %s\n", "ID", "COUNTER", "REGISTERED",
         "BY", "NAME");
  for (size_t i = 0; i < r->u.arr.n; i++) {
    const struct mg_json *t = r->u.arr.items[i];
    printf("%-14s %-12s %-20s %-24s ", str_or(t, "id", "?"),
           str_or(t, "counter", "?"), str_or(t, "created_at", "?"),
           str_or(t, "created_by", "?"));
    print_cell(str_or(t, "name", ""));
    putchar('\n');
  }
}

static void human_tablet_del(const struct mg_json *r) {
  printf("tablet %s removed\n", str_or(r, "id", "?"));
}

static int cmd_tablet_list(const struct opts *o, char **argv) {
  (void)argv;
  return simple(o, "tablet-list", NULL, human_tablets);
}

static int cmd_tablet_del(const struct opts *o, char **argv) {
  return simple(o, "tablet-del", argv[0], human_tablet_del);
}

static void human_visits_purge(const struct mg_json *r) {
  printf("%lld case(s) closed, %lld purged\n", int_or(r, "closed"),
         int_or(r, "purged"));
  if (mg_json_get(r, "outbox_purged"))
    printf("%lld acknowledged application(s) past [sync] retention purged\n",
           int_or(r, "outbox_purged"));
}

static int cmd_visits_purge(const struct opts *o, char **argv) {
  (void)argv;
  return simple(o, "visits-housekeeping", NULL, human_visits_purge);
}

/* ---------------------------------------------------------------------- */
/* The city's tenant (issue 8)                                             */

static void human_sync(const struct mg_json *r) {
  const struct mg_json *rj = mg_json_get(r, "rejected_rows");
  long long age = int_or(r, "oldest_age_s");
  printf("state:        %s%s\n", str_or(r, "state", "?"),
         mg_json_get_bool(r, "paused") == 1 ? " (paused by madoctl)" : "");
  printf("tenant:       %s\n", *str_or(r, "url", "") ? str_or(r, "url", "")
                                                      : "(off: [sync] url)");
  if (mg_json_get_bool(r, "enrolled") == 1)
    printf("enrolled:     box %s of city %s, certificate %s\n",
           str_or(r, "box", "?"), str_or(r, "city", "?"),
           str_or(r, "serial", "?"));
  else
    printf("enrolled:     no (madoctl sync enroll)\n");
  printf("queue:        %lld waiting", int_or(r, "queue_depth"));
  if (age >= 0)
    printf(", oldest %lldh %02lldm %02llds", age / 3600, age / 60 % 60,
           age % 60);
  printf("\n");
  printf("acknowledged: %lld in all, %lld kept until retention\n",
         int_or(r, "acked_total"), int_or(r, "acked_retained"));
  printf("last success: %s\n", str_or(r, "last_success", "never"));
  if (mg_json_get_str(r, "last_error"))
    printf("last error:   %s (%s)\n", str_or(r, "last_error", ""),
           str_or(r, "last_error_at", "?"));
  printf("circuit:      %s", str_or(r, "circuit", "?"));
  if (mg_json_get_str(r, "circuit_open_until"))
    printf(" until %s", str_or(r, "circuit_open_until", ""));
  printf(" (%lld failure(s) in a row)\n", int_or(r, "failures_in_row"));
  if (mg_json_get_str(r, "warning"))
    printf("WARNING:      %s\n", str_or(r, "warning", ""));
  if (int_or(r, "rejected") > 0) {
    printf("REJECTED:     %lld record(s) the tenant refused; they are kept "
           "and not resent:\n", int_or(r, "rejected"));
    for (size_t i = 0; rj && rj->type == MG_JSON_ARRAY && i < rj->u.arr.n;
         i++) {
      const struct mg_json *e = rj->u.arr.items[i];
      printf("  %-11s %s  ", str_or(e, "kind", "?"), str_or(e, "id", "?"));
      print_cell(str_or(e, "error", ""));
      putchar('\n');
    }
  }
}

static int cmd_sync_status(const struct opts *o, char **argv) {
  (void)argv;
  return simple(o, "sync-status", NULL, human_sync);
}

static int cmd_sync_now(const struct opts *o, char **argv) {
  (void)argv;
  return simple(o, "sync-now", NULL, human_sync);
}

static int cmd_sync_pause(const struct opts *o, char **argv) {
  (void)argv;
  return simple(o, "sync-pause", NULL, human_sync);
}

static int cmd_sync_resume(const struct opts *o, char **argv) {
  (void)argv;
  return simple(o, "sync-resume", NULL, human_sync);
}

static int cmd_sync_enroll(const struct opts *o, char **argv) {
  char code[160];
  int rc = 2;
  (void)argv;
  if (!o->url || !o->city || !o->box || !o->code_stdin) {
    fprintf(stderr, "madoctl: sync enroll needs --url, --city, --box and "
                    "--code-stdin (the one-time code is never taken from the "
                    "command line)\n");
    return 2;
  }
  size_t n = fread(code, 1, sizeof(code) - 1, stdin);
  code[n] = '\0';
  code[strcspn(code, "\r\n")] = '\0';
  if (!*code) {
    fprintf(stderr, "madoctl: sync enroll: no code on stdin\n");
    goto out;
  }
  {
    const char *args[4] = {o->url, o->city, o->box, code};
    struct mg_json *doc = NULL;
    const struct mg_json *r = NULL;
    rc = call_args(o, "sync-enroll", args, 4, &doc, &r);
    if (!rc) {
      if (o->json)
        emit_json(r);
      else
        printf("enrolled: box %s of city %s at %s (certificate %s)\n",
               str_or(r, "box", "?"), str_or(r, "city", "?"),
               str_or(r, "url", "?"), str_or(r, "serial", "?"));
    }
    mg_json_free(doc);
  }
out:
  OPENSSL_cleanse(code, sizeof(code));
  return rc;
}

/* ---------------------------------------------------------------------- */
/* Address dictionary (I1)                                                 */

static void human_address_import(const struct mg_json *r) {
  int64_t rows = 0;
  const struct mg_json *sec = mg_json_get(r, "seconds");
  mg_json_get_int(r, "rows", &rows);
  printf("imported %lld addresses in %.1f s\n", (long long)rows,
         sec && sec->type == MG_JSON_NUMBER ? sec->u.num.d : 0.0);
}

/* The daemon reads the file: send an absolute path. */
static int cmd_address_import(const struct opts *o, char **argv) {
  char *abs = realpath(argv[0], NULL);
  int rc;
  if (!abs) {
    fprintf(stderr, "madoctl: address import: %s: %s\n", argv[0],
            strerror(errno));
    return 1;
  }
  rc = simple(o, "address-import", abs, human_address_import);
  free(abs);
  return rc;
}

static void human_address_lookup(const struct mg_json *r) {
  const struct mg_json *as = mg_json_get(r, "addresses");
  if (!as || as->type != MG_JSON_ARRAY || as->u.arr.n == 0) {
    printf("%s: no address\n", str_or(r, "postal_code", "?"));
    return;
  }
  for (size_t i = 0; i < as->u.arr.n; i++) {
    const struct mg_json *a = as->u.arr.items[i];
    const char *note = str_or(a, "note", "");
    const char *district = mg_json_get_str(a, "district");
    printf("%s  %s%s%s  %s %s", str_or(a, "postal_code", "?"),
           str_or(a, "pref", ""), str_or(a, "city", ""), str_or(a, "town", ""),
           str_or(a, "pref_kana", ""), str_or(a, "city_kana", ""));
    if (*str_or(a, "town_kana", ""))
      printf(" %s", str_or(a, "town_kana", ""));
    if (*note)
      printf("  (%s)", note);
    if (district)
      printf("  district: %s", district);
    putchar('\n');
  }
}

static int cmd_address_lookup(const struct opts *o, char **argv) {
  return simple(o, "address-lookup", argv[0], human_address_lookup);
}

static int cmd_audit_verify(const struct opts *o, char **argv) {
  (void)argv;
  return simple(o, "audit-verify", NULL, human_audit_verify);
}

static int cmd_audit_log(const struct opts *o, char **argv) {
  const char *limit = o->limit ? o->limit : AUDIT_DEFAULT_LIMIT;
  const char *args[2] = {limit, o->object};
  struct mg_json *doc = NULL;
  const struct mg_json *r = NULL;
  char *end = NULL;
  long n = strtol(limit, &end, 10);
  int rc;
  (void)argv;
  if (end == limit || *end || n < 1 || n > 10000) {
    fprintf(stderr, "madoctl: audit log: --limit takes a number from 1 to 10000\n");
    return 2;
  }
  rc = call_args(o, "audit-log", args, o->object ? 2 : 1, &doc, &r);
  if (!rc) {
    if (o->json)
      emit_json(r);
    else
      human_audit_log(r);
  }
  mg_json_free(doc);
  return rc;
}

/* Checks a folder with the same validator the box runs before activating. */
static int cmd_pack_verify(const struct opts *o, char **argv) {
  struct mg_pack_report rep;
  mg_pack_report_init(&rep);
  int rc = mg_pack_verify(argv[0], &rep);
  if (o->json) {
    struct mg_buf b;
    struct mg_jw w;
    mg_buf_init(&b);
    mg_jw_init(&w, &b);
    mg_jw_obj(&w);
    mg_jw_kbool(&w, "valid", rc == 0);
    mg_jw_key(&w, "problems");
    mg_jw_arr(&w);
    for (size_t i = 0; i < rep.n; i++) {
      mg_jw_obj(&w);
      mg_jw_kstr(&w, "file", rep.v[i].file);
      mg_jw_kint(&w, "line", rep.v[i].line);
      mg_jw_kint(&w, "column", rep.v[i].col);
      mg_jw_kstr(&w, "message", rep.v[i].msg);
      mg_jw_obj_end(&w);
    }
    mg_jw_arr_end(&w);
    mg_jw_kint(&w, "more", (int64_t)rep.dropped);
    mg_jw_obj_end(&w);
    printf("%s\n", b.data ? b.data : "{}");
    mg_buf_free(&b);
  } else if (rc) {
    mg_pack_report_print(&rep, stderr);
    fprintf(stderr, "madoctl: %s: the pack is refused (%zu problem(s))\n", argv[0],
            rep.n + rep.dropped);
  } else {
    printf("%s: OK\n", argv[0]);
  }
  mg_pack_report_free(&rep);
  return rc ? 1 : 0;
}

static int cmd_config_check(const struct opts *o, char **argv) {
  struct mg_config *cfg = NULL;
  struct mg_plugin_host *h = NULL;
  struct mg_err err = {{0}};
  int rc = mg_config_load(argv[0], &cfg, &err);
  if (!rc && !(rc = mg_plugin_host_create(NULL, cfg->plugin_dir, NULL, NULL, &h)))
    rc = mg_plugin_host_configure(h, cfg, &err);
  if (rc) {
    fprintf(stderr, "madoctl: %s\n", err.msg[0] ? err.msg : strerror(-rc));
    if (o->json) {
      struct mg_buf b;
      mg_buf_init(&b);
      mg_buf_puts(&b, "{\"valid\":false,\"error\":");
      mg_json_escape(&b, err.msg, strlen(err.msg));
      mg_buf_puts(&b, "}");
      printf("%s\n", b.data ? b.data : "");
      mg_buf_free(&b);
    }
  } else if (o->json) {
    printf("{\"valid\":true,\"devices\":%zu}\n", cfg->n_devices);
  } else {
    printf("%s: OK (%zu device section(s))\n", argv[0], cfg->n_devices);
  }
  mg_plugin_host_destroy(h);
  mg_config_free(cfg);
  return rc ? 1 : 0;
}

/* ---------------------------------------------------------------------- */

int main(int argc, char **argv) {
  struct opts o = {.socket = getenv("MADOCTL_SOCKET")};
  char *words[8];
  int nw = 0, help = 0;

  if (!o.socket || !*o.socket)
    o.socket = DEFAULT_SOCKET;
  mg_log_init();
  mg_log_set_level(MG_LOG_WARNING); /* plugin loading during config check */
  /* Options may stand anywhere; everything else is the command and args. */
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--json") == 0) {
      o.json = 1;
    } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      help = 1;
    } else if (strcmp(argv[i], "--version") == 0) {
      printf("madoctl %s\n", MG_VERSION);
      return 0;
    } else if (strcmp(argv[i], "--socket") == 0) {
      if (++i >= argc) {
        fprintf(stderr, "madoctl: --socket needs a path\n");
        return 2;
      }
      o.socket = argv[i];
    } else if (strcmp(argv[i], "--printer") == 0) {
      if (++i >= argc) {
        fprintf(stderr, "madoctl: --printer needs a name\n");
        return 2;
      }
      o.printer = argv[i];
    } else if (strcmp(argv[i], "--name") == 0 || strcmp(argv[i], "--role") == 0 ||
               strcmp(argv[i], "--valid-from") == 0 ||
               strcmp(argv[i], "--valid-until") == 0) {
      const char *opt = argv[i];
      if (++i >= argc) {
        fprintf(stderr, "madoctl: %s needs a value\n", opt);
        return 2;
      }
      if (opt[2] == 'n')
        o.name = argv[i];
      else if (opt[2] == 'r')
        o.role = argv[i];
      else if (opt[8] == 'f')
        o.valid_from = argv[i];
      else
        o.valid_until = argv[i];
    } else if (strcmp(argv[i], "--limit") == 0 || strcmp(argv[i], "--object") == 0) {
      const char *opt = argv[i];
      if (++i >= argc) {
        fprintf(stderr, "madoctl: %s needs a value\n", opt);
        return 2;
      }
      if (opt[2] == 'l')
        o.limit = argv[i];
      else
        o.object = argv[i];
    } else if (strcmp(argv[i], "--password-stdin") == 0) {
      o.password_stdin = 1;
    } else if (strcmp(argv[i], "--pin-stdin") == 0) {
      o.pin_stdin = 1;
    } else if (strcmp(argv[i], "--card-number-stdin") == 0) {
      o.card_number_stdin = 1;
    } else if (strcmp(argv[i], "--code-stdin") == 0) {
      o.code_stdin = 1;
    } else if (strcmp(argv[i], "--url") == 0 || strcmp(argv[i], "--city") == 0 ||
               strcmp(argv[i], "--box") == 0) {
      const char *opt = argv[i];
      if (++i >= argc) {
        fprintf(stderr, "madoctl: %s needs a value\n", opt);
        return 2;
      }
      if (opt[2] == 'u')
        o.url = argv[i];
      else if (opt[2] == 'c')
        o.city = argv[i];
      else
        o.box = argv[i];
    } else if (strcmp(argv[i], "--reader") == 0) {
      if (++i >= argc) {
        fprintf(stderr, "madoctl: --reader needs a value\n");
        return 2;
      }
      o.reader = argv[i];
    } else if (strncmp(argv[i], "--socket=", 9) == 0) {
      o.socket = argv[i] + 9;
    } else if (argv[i][0] == '-' && argv[i][1]) {
      fprintf(stderr, "madoctl: unknown option %s (see madoctl --help)\n", argv[i]);
      return 2;
    } else if (nw < 8) {
      words[nw++] = argv[i];
    } else {
      fprintf(stderr, "madoctl: too many arguments\n");
      return 2;
    }
  }
  if (nw == 0) {
    usage(help ? stdout : stderr);
    return help ? 0 : 2;
  }
  /* Match the longest command name made of the leading words. */
  for (size_t i = 0; i < N_COMMANDS; i++) {
    const struct command *c = &commands[i];
    int used = 1;
    char joined[64];
    snprintf(joined, sizeof(joined), "%s", words[0]);
    if (strchr(c->name, ' ') && nw >= 2)
      snprintf(joined, sizeof(joined), "%s %s", words[0], words[1]), used = 2;
    if (strcmp(joined, c->name) != 0)
      continue;
    if (help) {
      command_usage(c, stdout);
      return 0;
    }
    if (nw - used != c->nargs) {
      fprintf(stderr, "madoctl: %s takes %s\n", c->name,
              c->nargs ? c->args : "no arguments");
      return 2;
    }
    return c->run(&o, words + used);
  }
  for (size_t i = 0; i < N_COMMANDS; i++)
    if (strchr(commands[i].name, ' ') &&
        strncmp(commands[i].name, words[0], strlen(words[0])) == 0 &&
        commands[i].name[strlen(words[0])] == ' ') {
      fprintf(stderr, "madoctl: '%s' needs a subcommand (see madoctl --help)\n",
              words[0]);
      return 2;
    }
  fprintf(stderr, "madoctl: unknown command '%s' (see madoctl --help)\n", words[0]);
  return 2;
}
