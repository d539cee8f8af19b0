/*
 * config.c — the INI reader and the declarative key tables.  Every key the
 * daemon knows is declared once below; parsing, defaults, range checks and
 * docs/config.md all come from these tables.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ini.h"
#include "log.h"

#define CFG_OFF(f) offsetof(struct mg_config, f)
#define DEV_OFF(f) offsetof(struct mg_config_device, f)

static const char *check_listen(const void *stored);
static const char *check_abs_path(const void *stored);
static const char *check_abs_path_or_empty(const void *stored);
static const char *check_fingerprint(const void *stored);
static const char *check_time_of_day(const void *stored);

static const struct mg_config_item daemon_items[] = {
    {MG_CFG_STR, "state_dir", "/var/lib/madoguchi", CFG_OFF(state_dir), 0, 0, 0,
     NULL, check_abs_path,
     "Database, TLS material and pack releases (absolute path)."},
    {MG_CFG_STR, "runtime_dir", "/run/madoguchi", CFG_OFF(runtime_dir), 0, 0, 0,
     NULL, check_abs_path, "Where ctl.sock lives (absolute path)."},
    {MG_CFG_STR, "plugin_dir", MG_DEFAULT_PLUGIN_DIR, CFG_OFF(plugin_dir), 0, 0,
     0, NULL, check_abs_path, "Where device plugins (NAME.so) are loaded from."},
    {MG_CFG_STR, "web_dir", MG_DEFAULT_WEB_DIR, CFG_OFF(web_dir), 0, 0, 0, NULL,
     check_abs_path, "Static files of the tablet web app."},
    {MG_CFG_ENUM, "log_level", "info", CFG_OFF(log_level), MG_CFG_RELOAD, 0, 0,
     "error|warning|notice|info|debug", NULL,
     "Least severe level written to the log."},
    {MG_CFG_STR, "ctl_group", "madoguchi", CFG_OFF(ctl_group), 0, 0, 0, NULL,
     NULL,
     "Group whose members may use ctl.sock (besides root and the daemon's "
     "user)."},
    {0, NULL, NULL, 0, 0, 0, 0, NULL, NULL, NULL}};

static const struct mg_config_item http_items[] = {
    {MG_CFG_STR, "listen", "0.0.0.0:8443", CFG_OFF(listen), 0, 0, 0, NULL,
     check_listen,
     "Address and port of the HTTPS listener: `IPv4:port`, `[IPv6]:port` or "
     "`*:port`; port 0 picks a free port (see `madoctl status`)."},
    {MG_CFG_SIZE, "max_body", "1M", CFG_OFF(max_body), 0, 1024, 64LL << 20, NULL,
     NULL, "Largest request body accepted (413 above it)."},
    {MG_CFG_DURATION, "request_timeout", "10s", CFG_OFF(request_timeout), 0,
     100, 600000, NULL, NULL,
     "A request's headers and body must arrive within this time."},
    {MG_CFG_DURATION, "idle_timeout", "60s", CFG_OFF(idle_timeout), 0, 1000,
     3600000, NULL, NULL, "An idle keep-alive connection is closed after this."},
    {MG_CFG_INT, "max_connections", "1024", CFG_OFF(max_connections), 0, 1,
     65536, NULL, NULL, "Simultaneous client connections."},
    {MG_CFG_DURATION, "drain_timeout", "5s", CFG_OFF(drain_timeout), 0, 0,
     60000, NULL, NULL,
     "On SIGTERM, how long requests in flight may take to finish."},
    {MG_CFG_DURATION, "static_max_age", "1h", CFG_OFF(static_max_age),
     MG_CFG_RELOAD, 0, 31536000000LL, NULL, NULL,
     "Cache-Control max-age of files under /assets/ (other files are revalidated on every load)."},
    {0, NULL, NULL, 0, 0, 0, 0, NULL, NULL, NULL}};

static const struct mg_config_item tls_items[] = {
    {MG_CFG_STR, "cert", "", CFG_OFF(cert), 0, 0, 0, NULL,
     check_abs_path_or_empty,
     "PEM certificate chain; default `state_dir/tls/cert.pem`, made "
     "self-signed on first start when absent."},
    {MG_CFG_STR, "key", "", CFG_OFF(key), 0, 0, 0, NULL, check_abs_path_or_empty,
     "PEM private key; default `state_dir/tls/key.pem` (mode 0600)."},
    {MG_CFG_ENUM, "min_version", "1.2", CFG_OFF(tls_min), 0, 0, 0, "1.2|1.3",
     NULL, "Lowest TLS version accepted."},
    {0, NULL, NULL, 0, 0, 0, 0, NULL, NULL, NULL}};

static const struct mg_config_item pack_items[] = {
    {MG_CFG_STR, "url", "", CFG_OFF(pack_url), 0, 0, 0, NULL, NULL,
     "Git repository of the procedure pack: `https://…`, `ssh://…`, `file://…` "
     "or a path; empty: no pack is pulled (docs/packs.md)."},
    {MG_CFG_STR, "branch", "main", CFG_OFF(pack_branch), 0, 0, 0, NULL, NULL,
     "Branch whose signed tip is activated."},
    {MG_CFG_STR, "allowed_signers", "", CFG_OFF(pack_signers), 0, 0, 0, NULL,
     check_abs_path_or_empty,
     "OpenSSH allowed_signers file: the administrators whose SSH-signed "
     "commits may be activated (Ed25519 keys, namespace git)."},
    {MG_CFG_STR, "ssh_key", "", CFG_OFF(pack_ssh_key), 0, 0, 0, NULL,
     check_abs_path_or_empty,
     "Private key (a read-only deploy key) offered to an `ssh://` url; "
     "readable by the daemon only."},
    {MG_CFG_STR, "ssh_host_key", "", CFG_OFF(pack_ssh_host_key), 0, 0, 0,
     NULL, check_fingerprint,
     "`SHA256:…` fingerprint of the `ssh://` server's host key (`ssh-keygen "
     "-lf`); empty: any host key (signatures still decide what is "
     "activated)."},
    {MG_CFG_STR, "ca_file", "", CFG_OFF(pack_ca_file), 0, 0, 0, NULL,
     check_abs_path_or_empty,
     "PEM CA certificates trusted for an `https://` url besides the "
     "system's (a city's private CA)."},
    {MG_CFG_DURATION, "interval", "15m", CFG_OFF(pack_interval), 0, 0,
     7LL * 24 * 3600 * 1000, NULL, NULL,
     "Time between pulls, with ±10 % jitter; 0: only `madoctl pack pull`."},
    {MG_CFG_INT, "keep_releases", "3", CFG_OFF(pack_keep), 0, 1, 50, NULL,
     NULL, "Earlier releases kept for `madoctl pack rollback`."},
    {0, NULL, NULL, 0, 0, 0, 0, NULL, NULL, NULL}};

static const struct mg_config_item auth_items[] = {
    {MG_CFG_STR, "users_file", "", CFG_OFF(auth_users_file), 0, 0, 0, NULL,
     check_abs_path_or_empty,
     "Seed staff accounts (docs/operations.md \"Staff accounts\"): users "
     "in it that the box does not have yet are added at start; existing "
     "ones are left as they are."},
    {MG_CFG_BOOL, "require_tablet", "yes", CFG_OFF(auth_require_tablet), 0,
     0, 0, NULL, NULL,
     "Staff log in only on a tablet registered to a counter (an "
     "administrator registers it); `no` lets the login name the counter."},
    {0, NULL, NULL, 0, 0, 0, 0, NULL, NULL, NULL}};

static const struct mg_config_item visits_items[] = {
    {MG_CFG_DURATION, "retention", "7d", CFG_OFF(visit_retention), 0, 0,
     3650LL * 86400 * 1000, NULL, NULL,
     "How long a closed case's personal data is kept before it is purged "
     "from the box (D1)."},
    {MG_CFG_STR, "close_at", "18:00", CFG_OFF(visit_close_at), 0, 0, 0, NULL,
     check_time_of_day,
     "Close of business (HH:MM, local time): cases still open are closed "
     "then; empty: only on demand."},
    {MG_CFG_INT, "search_days", "7", CFG_OFF(visit_search_days), 0, 1, 366,
     NULL, NULL, "Cases of this many recent days are found by name, birth "
     "date or number."},
    {MG_CFG_DURATION, "unmask_for", "30m", CFG_OFF(visit_unmask_for), 0, 60000,
     86400000, NULL, NULL,
     "How long a supervisor's unmasking of a support-measure case lasts at "
     "that counter (C2)."},
    {0, NULL, NULL, 0, 0, 0, 0, NULL, NULL, NULL}};

static const struct mg_config_item address_items[] = {
    {MG_CFG_STR, "file", "", CFG_OFF(address_file), 0, 0, 0, NULL,
     check_abs_path_or_empty,
     "The national address dictionary (I1), written by `madoctl address "
     "import` and read by the address API; default "
     "`state_dir/address.db`."},
    {0, NULL, NULL, 0, 0, 0, 0, NULL, NULL, NULL}};

static const char *check_https_url(const void *stored);

static const struct mg_config_item sync_items[] = {
    {MG_CFG_STR, "url", "", CFG_OFF(sync_url), 0, 0, 0, NULL, check_https_url,
     "The city's tenant (docs/tenant-api.md), `https://host[:port][/path]`; "
     "empty: "
     "nothing is sent (applications still queue in the outbox)."},
    {MG_CFG_STR, "ca_file", "", CFG_OFF(sync_ca_file), 0, 0, 0, NULL,
     check_abs_path_or_empty,
     "PEM CA certificate(s) the tenant's server certificate must chain to; "
     "empty: the system's CAs."},
    {MG_CFG_INT, "batch", "500", CFG_OFF(sync_batch), 0, 1, 1000, NULL, NULL,
     "Records per upload (the tenant takes at most 1000)."},
    {MG_CFG_DURATION, "interval", "2s", CFG_OFF(sync_interval), 0, 100,
     3600000, NULL, NULL,
     "How often due rows are looked for even when nothing new was queued "
     "(a submission sends at once)."},
    {MG_CFG_DURATION, "timeout", "30s", CFG_OFF(sync_timeout), 0, 1000,
     600000, NULL, NULL, "One request to the tenant, connection included."},
    {MG_CFG_DURATION, "fetch_timeout", "1500ms", CFG_OFF(sync_fetch_timeout),
     0, 100, 600000, NULL, NULL,
     "How long resuming a case this box holds waits for a newer copy from "
     "the tenant (changed on another floor, C1, G5) before it answers with "
     "its own copy (`\"fresh\": false`)."},
    {MG_CFG_DURATION, "backoff_min", "1s", CFG_OFF(sync_backoff_min), 0, 100,
     3600000, NULL, NULL,
     "Base of the retry delay after a failure: random(0, min(backoff_max, "
     "backoff_min·2^failures)) (full jitter)."},
    {MG_CFG_DURATION, "backoff_max", "5m", CFG_OFF(sync_backoff_max), 0, 1000,
     86400000, NULL, NULL, "Longest retry delay."},
    {MG_CFG_INT, "circuit_after", "5", CFG_OFF(sync_circuit_after), 0, 1, 1000,
     NULL, NULL,
     "Failures in a row that open the circuit: no requests for "
     "`circuit_open`, then one probe."},
    {MG_CFG_DURATION, "circuit_open", "15s", CFG_OFF(sync_circuit_open), 0,
     1000, 86400000, NULL, NULL,
     "How long an open circuit sends nothing (a backlog starts to drain at "
     "most this long after the tenant is back)."},
    {MG_CFG_DURATION, "retention", "7d", CFG_OFF(sync_retention), 0, 0,
     3650LL * 86400 * 1000, NULL, NULL,
     "How long an application the tenant acknowledged stays on the box "
     "before it is purged (D1); unacknowledged ones are never purged."},
    {MG_CFG_INT, "warn_depth", "10000", CFG_OFF(sync_warn_depth), 0, 1,
     100000000, NULL, NULL,
     "Rows waiting for the tenant from which the log and `madoctl sync "
     "status` warn (the queue itself is bounded only by disk)."},
    {0, NULL, NULL, 0, 0, 0, 0, NULL, NULL, NULL}};

/* Keys the host reads in every device section; the rest go to the plugin. */
static const struct mg_config_item device_items[] = {
    {MG_CFG_STR, "plugin", NULL, DEV_OFF(plugin), MG_CFG_REQUIRED, 0, 0, NULL,
     NULL, "Plugin driving the device: `plugin_dir/NAME.so`."},
    {MG_CFG_LIST, "counter", "", DEV_OFF(counters), 0, 0, 0, NULL, NULL,
     "Counter (窓口) id the device serves."},
    {MG_CFG_LIST, "counters", "", DEV_OFF(counters), 0, 0, 0, NULL, NULL,
     "Several counters, comma separated (a shared printer)."},
    {MG_CFG_BOOL, "enabled", "true", DEV_OFF(enabled), 0, 0, 0, NULL, NULL,
     "`false` keeps the section but does not load the device."},
    {0, NULL, NULL, 0, 0, 0, 0, NULL, NULL, NULL}};

struct section_def {
  const char *name;
  const struct mg_config_item *items;
  const char *doc;
};

static const struct section_def plain_sections[] = {
    {"daemon", daemon_items, "The daemon itself."},
    {"http", http_items, "The HTTPS and WebSocket listener for the tablets."},
    {"tls", tls_items, "TLS material of the listener."},
    {"pack", pack_items, "Where the procedure pack comes from."},
    {"auth", auth_items, "Staff accounts and counter tablets."},
    {"visits", visits_items, "Cases: closing, retention, search and masking."},
    {"address", address_items, "The national address dictionary."},
    {"sync", sync_items, "The city's tenant: outbox, retries, retention (issue 8)."},
};

/* Section types that declare a device; the kind must match the plugin's. */
static const struct {
  const char *type;
  int kind;
} device_types[] = {
    {"reader", MG_PLUGIN_KIND_CARD_READER}, {"printer", MG_PLUGIN_KIND_PRINTER},
    {"pad", MG_PLUGIN_KIND_SIGNATURE_PAD},  {"camera", MG_PLUGIN_KIND_CAMERA},
    {"exporter", MG_PLUGIN_KIND_EXPORTER},  {"ocr", MG_PLUGIN_KIND_OCR},
    {"scanner", MG_PLUGIN_KIND_SCANNER},
};

/* ---------------------------------------------------------------------- */
/* Value checks                                                            */

static const char *check_abs_path(const void *stored) {
  const char *s = *(char *const *)stored;
  if (!s || s[0] != '/')
    return "must be an absolute path";
  return NULL;
}

static const char *check_fingerprint(const void *stored) {
  const char *s = *(char *const *)stored;
  if (!s || !*s)
    return NULL;
  if (strncmp(s, "SHA256:", 7) != 0 || strlen(s) != 50 ||
      strspn(s + 7, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") != 43)
    return "must be SHA256: and 43 base64 characters, as ssh-keygen -lf prints";
  return NULL;
}

static const char *check_abs_path_or_empty(const void *stored) {
  const char *s = *(char *const *)stored;
  if (s && s[0] && s[0] != '/')
    return "must be an absolute path";
  return NULL;
}

static const char *check_https_url(const void *stored) {
  const char *s = *(char *const *)stored;
  if (s && s[0] &&
      (strncmp(s, "https://", 8) != 0 || !s[8] || s[8] == '/' ||
       strpbrk(s, " \t\"'<>\\")))
    return "must be https://HOST[:PORT][/PATH] (no spaces or quotes), or empty";
  return NULL;
}

static const char *check_time_of_day(const void *stored) {
  const char *s = *(char *const *)stored;
  if (s && s[0] &&
      !(strlen(s) == 5 && s[2] == ':' && strspn(s, "0123456789:") == 5 &&
        atoi(s) < 24 && atoi(s + 3) < 60))
    return "must be a time of day HH:MM (24-hour), or empty";
  return NULL;
}

int mg_config_listen_split(const char *listen, char *host, size_t hostlen,
                           int *port) {
  const char *colon;
  size_t hl;
  const char *h = listen;
  if (!listen || !*listen)
    return -EINVAL;
  if (listen[0] == '[') {
    const char *end = strchr(listen, ']');
    if (!end || end[1] != ':')
      return -EINVAL;
    h = listen + 1;
    hl = (size_t)(end - h);
    colon = end + 1;
  } else {
    colon = strrchr(listen, ':');
    if (!colon || memchr(listen, ':', (size_t)(colon - listen)))
      return -EINVAL;
    hl = (size_t)(colon - listen);
  }
  if (hl == 0 || hl >= hostlen)
    return -EINVAL;
  for (size_t i = 0; i < hl; i++)
    if (!(isalnum((unsigned char)h[i]) || strchr(".:-*%", h[i])))
      return -EINVAL;
  char *end = NULL;
  errno = 0;
  long p = strtol(colon + 1, &end, 10);
  if (errno || !colon[1] || *end || p < 0 || p > 65535)
    return -EINVAL;
  memcpy(host, h, hl);
  host[hl] = '\0';
  if (strcmp(host, "*") == 0)
    snprintf(host, hostlen, "0.0.0.0");
  *port = (int)p;
  return 0;
}

static const char *check_listen(const void *stored) {
  char host[256];
  int port;
  if (mg_config_listen_split(*(char *const *)stored, host, sizeof(host), &port))
    return "must be HOST:PORT (e.g. 0.0.0.0:8443 or [::]:8443), port 0-65535";
  return NULL;
}

/* ---------------------------------------------------------------------- */
/* Conversions                                                             */

static int parse_int(const char *s, int64_t *out) {
  char *end = NULL;
  if (!*s || isspace((unsigned char)*s))
    return -1;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno || *end)
    return -1;
  *out = v;
  return 0;
}

/* Number followed by a unit from `units` (each with its multiplier). */
static int parse_scaled(const char *s, const char *const *names,
                        const int64_t *mult, size_t n, int64_t *out) {
  char *end = NULL;
  if (!isdigit((unsigned char)*s))
    return -1;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno || v < 0)
    return -1;
  for (size_t i = 0; i < n; i++) {
    if (strcmp(end, names[i]) == 0) {
      if (mult[i] && v > INT64_MAX / mult[i])
        return -1;
      *out = v * mult[i];
      return 0;
    }
  }
  return -1;
}

static int parse_duration(const char *s, int64_t *ms) {
  static const char *const names[] = {"", "ms", "s", "m", "h", "d"};
  static const int64_t mult[] = {1, 1, 1000, 60000, 3600000, 86400000};
  return parse_scaled(s, names, mult, 6, ms);
}

static int parse_size(const char *s, int64_t *bytes) {
  static const char *const names[] = {"", "k", "K", "M", "G"};
  static const int64_t mult[] = {1, 1024, 1024, 1024 * 1024, 1024 * 1024 * 1024};
  return parse_scaled(s, names, mult, 5, bytes);
}

static int parse_bool(const char *s) {
  static const char *const t[] = {"true", "yes", "on", "1"};
  static const char *const f[] = {"false", "no", "off", "0"};
  for (size_t i = 0; i < 4; i++) {
    if (strcasecmp(s, t[i]) == 0)
      return 1;
    if (strcasecmp(s, f[i]) == 0)
      return 0;
  }
  return -1;
}

static int parse_enum(const char *choices, const char *s) {
  int idx = 0;
  size_t n = strlen(s);
  for (const char *p = choices; p; idx++) {
    const char *bar = strchr(p, '|');
    size_t len = bar ? (size_t)(bar - p) : strlen(p);
    if (len == n && strncmp(p, s, n) == 0)
      return idx;
    p = bar ? bar + 1 : NULL;
  }
  return -1;
}

static void list_free(struct mg_config_list *l) {
  for (size_t i = 0; i < l->n; i++)
    free(l->items[i]);
  free(l->items);
  l->items = NULL;
  l->n = 0;
}


/* Appends to the list: `counter` and `counters` share one. */
static const char *list_add(struct mg_config_list *l, const char *s) {
  const char *p = s;
  while (*p) {
    const char *comma = strchr(p, ',');
    size_t len = comma ? (size_t)(comma - p) : strlen(p);
    char *item = mg__trimdup(p, len);
    if (!item)
      return "out of memory";
    if (!*item) {
      free(item);
      return "has an empty item in its comma separated list";
    }
    char **v = realloc(l->items, (l->n + 1) * sizeof(*v));
    if (!v) {
      free(item);
      return "out of memory";
    }
    l->items = v;
    l->items[l->n++] = item;
    p = comma ? comma + 1 : p + len;
  }
  return NULL;
}

static const char *range_check(const struct mg_config_item *it, int64_t v) {
  static char why[128]; /* config is read on one thread only */
  if (it->min < it->max && (v < it->min || v > it->max)) {
    snprintf(why, sizeof(why), "must be between %lld and %lld",
             (long long)it->min, (long long)it->max);
    return why;
  }
  return NULL;
}

const char *mg_config_set(const struct mg_config_item *it, void *base,
                          const char *value) {
  void *field = (char *)base + it->offset;
  int64_t v = 0;
  const char *why = NULL;
  switch (it->type) {
  case MG_CFG_STR: {
    char *copy = strdup(value);
    if (!copy)
      return "out of memory";
    free(*(char **)field);
    *(char **)field = copy;
    break;
  }
  case MG_CFG_INT:
    if (parse_int(value, &v))
      return "must be a whole number";
    if ((why = range_check(it, v)))
      return why;
    *(int64_t *)field = v;
    break;
  case MG_CFG_DURATION:
    if (parse_duration(value, &v))
      return "must be a duration such as 250ms, 30s, 5m, 2h or 7d";
    if ((why = range_check(it, v)))
      return why;
    *(int64_t *)field = v;
    break;
  case MG_CFG_SIZE:
    if (parse_size(value, &v))
      return "must be a size such as 512, 64k, 10M or 1G";
    if ((why = range_check(it, v)))
      return why;
    *(int64_t *)field = v;
    break;
  case MG_CFG_BOOL: {
    int b = parse_bool(value);
    if (b < 0)
      return "must be true or false";
    *(int *)field = b;
    break;
  }
  case MG_CFG_ENUM: {
    int e = parse_enum(it->choices ? it->choices : "", value);
    if (e < 0) {
      static char msg[160];
      snprintf(msg, sizeof(msg), "must be one of %s", it->choices);
      return msg;
    }
    *(int *)field = e;
    break;
  }
  case MG_CFG_LIST:
    if ((why = list_add((struct mg_config_list *)field, value)))
      return why;
    break;
  default:
    return "has a type this daemon does not know (plugin built for a newer ABI?)";
  }
  return it->check ? it->check(field) : NULL;
}

const struct mg_config_item *mg_config_find(const struct mg_config_item *table,
                                            const char *key) {
  for (const struct mg_config_item *it = table; it && it->name; it++)
    if (strcmp(it->name, key) == 0)
      return it;
  return NULL;
}

int mg_config_defaults(const struct mg_config_item *table, void *base,
                       struct mg_err *err) {
  for (const struct mg_config_item *it = table; it && it->name; it++) {
    if (!it->def || (it->type == MG_CFG_LIST && !*it->def))
      continue;
    /* A default that fails its own rule is a bug in the table. */
    const char *why = mg_config_set(it, base, it->def);
    if (why && !(it->type == MG_CFG_STR && !*it->def))
      return mg_err_set(err, -EINVAL, "default of `%s` (%s) %s", it->name,
                        it->def, why);
  }
  return 0;
}

int mg_config_apply(const struct mg_config_item *table, void *base,
                    const struct mg_config_kv *kv, size_t n_kv,
                    const char *file, int section_line, const char *where,
                    struct mg_err *err) {
  int rc = mg_config_defaults(table, base, err);
  if (rc)
    return rc;
  for (size_t i = 0; i < n_kv; i++) {
    const struct mg_config_item *it = mg_config_find(table, kv[i].key);
    if (!it)
      return mg_err_set(err, -EINVAL, "%s:%d: unknown key `%s` in %s", file,
                        kv[i].line, kv[i].key, where);
    for (size_t j = 0; j < i; j++)
      if (strcmp(kv[j].key, kv[i].key) == 0)
        return mg_err_set(err, -EINVAL,
                          "%s:%d: `%s` is already set on line %d in %s", file,
                          kv[i].line, kv[i].key, kv[j].line, where);
    const char *why = mg_config_set(it, base, kv[i].value);
    if (why)
      return mg_err_set(err, -EINVAL, "%s:%d: `%s` in %s %s (got \"%s\")", file,
                        kv[i].line, kv[i].key, where, why, kv[i].value);
  }
  for (const struct mg_config_item *it = table; it && it->name; it++) {
    int given = 0;
    if (!(it->flags & MG_CFG_REQUIRED))
      continue;
    for (size_t i = 0; i < n_kv && !given; i++)
      given = strcmp(kv[i].key, it->name) == 0;
    if (!given)
      return mg_err_set(err, -EINVAL, "%s:%d: %s needs `%s`", file,
                        section_line, where, it->name);
  }
  return 0;
}

void mg_config_release(const struct mg_config_item *table, void *base) {
  for (const struct mg_config_item *it = table; it && it->name; it++) {
    void *field = (char *)base + it->offset;
    if (it->type == MG_CFG_STR) {
      free(*(char **)field);
      *(char **)field = NULL;
    } else if (it->type == MG_CFG_LIST) {
      list_free((struct mg_config_list *)field);
    }
  }
}

/* ---------------------------------------------------------------------- */

static void device_free(struct mg_config_device *d) {
  mg_config_release(device_items, d);
  for (size_t i = 0; i < d->n_kv; i++) {
    free(d->kv[i].key);
    free(d->kv[i].value);
  }
  free(d->kv);
  free(d->type);
  free(d->id);
}

void mg_config_free(struct mg_config *cfg) {
  if (!cfg)
    return;
  for (size_t i = 0; i < sizeof(plain_sections) / sizeof(plain_sections[0]); i++)
    mg_config_release(plain_sections[i].items, cfg);
  for (size_t i = 0; i < cfg->n_devices; i++)
    device_free(&cfg->devices[i]);
  free(cfg->devices);
  free(cfg->path);
  free(cfg);
}

int mg_config_device_kind(const char *type) {
  for (size_t i = 0; i < sizeof(device_types) / sizeof(device_types[0]); i++)
    if (strcmp(device_types[i].type, type) == 0)
      return device_types[i].kind;
  return 0;
}

/* Host keys of a device section go through device_items; the others are
 * moved aside for the plugin's table. */
static int take_device(struct mg_config *cfg, struct mg_ini_section *s,
                       const char *file, struct mg_err *err) {
  struct mg_config_kv *host_kv = NULL;
  size_t n_host = 0;
  char where[160];
  int rc = 0;
  struct mg_config_device *d = NULL;

  for (size_t i = 0; i < cfg->n_devices; i++)
    if (strcmp(cfg->devices[i].id, s->id) == 0)
      return mg_err_set(err, -EINVAL,
                        "%s:%d: device id \"%s\" is already used on line %d",
                        file, s->line, s->id, cfg->devices[i].line);
  struct mg_config_device *v =
      realloc(cfg->devices, (cfg->n_devices + 1) * sizeof(*v));
  if (!v)
    return mg_err_set(err, -ENOMEM, "out of memory");
  cfg->devices = v;
  d = &v[cfg->n_devices++];
  memset(d, 0, sizeof(*d));
  d->type = s->type;
  d->id = s->id;
  d->line = s->line;
  s->type = s->id = NULL;
  d->kv = calloc(s->n_kv ? s->n_kv : 1, sizeof(*d->kv));
  host_kv = calloc(s->n_kv ? s->n_kv : 1, sizeof(*host_kv));
  if (!d->kv || !host_kv) {
    rc = mg_err_set(err, -ENOMEM, "out of memory");
    goto out;
  }
  for (size_t i = 0; i < s->n_kv; i++) {
    if (mg_config_find(device_items, s->kv[i].key))
      host_kv[n_host++] = s->kv[i];
    else
      d->kv[d->n_kv++] = s->kv[i];
  }
  /* The kv strings now belong to d (or are borrowed by host_kv below). */
  snprintf(where, sizeof(where), "[%s \"%s\"]", d->type, d->id);
  rc = mg_config_apply(device_items, d, host_kv, n_host, file, d->line, where,
                       err);
  for (size_t i = 0; i < n_host; i++) {
    free(host_kv[i].key);
    free(host_kv[i].value);
  }
  free(s->kv);
  s->kv = NULL;
  s->n_kv = 0;
out:
  free(host_kv);
  return rc;
}

int mg_config_parse(const char *text, size_t len, const char *name,
                    struct mg_config **out, struct mg_err *err) {
  struct mg_ini ini = {0};
  struct mg_config *cfg = calloc(1, sizeof(*cfg));
  int rc = 0;
  const size_t n_plain = sizeof(plain_sections) / sizeof(plain_sections[0]);
  int seen[sizeof(plain_sections) / sizeof(plain_sections[0])] = {0};

  *out = NULL;
  if (!cfg || !(cfg->path = strdup(name))) {
    rc = mg_err_set(err, -ENOMEM, "out of memory");
    goto out;
  }
  if ((rc = mg_ini_read(text, len, name, &ini, err)))
    goto out;
  for (size_t i = 0; i < ini.n; i++) {
    struct mg_ini_section *s = &ini.s[i];
    if (s->id) {
      if (!mg_config_device_kind(s->type)) {
        rc = mg_err_set(err, -EINVAL,
                        "%s:%d: unknown section type `%s` (devices are reader, "
                        "printer, pad, camera, exporter, ocr, scanner)",
                        name, s->line, s->type);
        goto out;
      }
      if ((rc = take_device(cfg, s, name, err)))
        goto out;
      continue;
    }
    size_t k = 0;
    while (k < n_plain && strcmp(plain_sections[k].name, s->type) != 0)
      k++;
    if (k == n_plain) {
      rc = mg_err_set(err, -EINVAL, "%s:%d: unknown section [%s]", name, s->line,
                      s->type);
      goto out;
    }
    if (seen[k]) {
      rc = mg_err_set(err, -EINVAL, "%s:%d: section [%s] already appears on line %d",
                      name, s->line, s->type, seen[k]);
      goto out;
    }
    seen[k] = s->line;
    char where[64];
    snprintf(where, sizeof(where), "[%s]", s->type);
    if ((rc = mg_config_apply(plain_sections[k].items, cfg, s->kv, s->n_kv, name,
                              s->line, where, err)))
      goto out;
  }
  /* Sections that did not appear still get their defaults. */
  for (size_t k = 0; k < n_plain; k++)
    if (!seen[k] && (rc = mg_config_defaults(plain_sections[k].items, cfg, err)))
      goto out;
  /* Derived defaults. */
  if (!cfg->cert || !*cfg->cert) {
    free(cfg->cert);
    if (asprintf(&cfg->cert, "%s/tls/cert.pem", cfg->state_dir) < 0)
      cfg->cert = NULL;
  }
  if (!cfg->key || !*cfg->key) {
    free(cfg->key);
    if (asprintf(&cfg->key, "%s/tls/key.pem", cfg->state_dir) < 0)
      cfg->key = NULL;
  }
  if (!cfg->address_file || !*cfg->address_file) {
    free(cfg->address_file);
    if (asprintf(&cfg->address_file, "%s/address.db", cfg->state_dir) < 0)
      cfg->address_file = NULL;
  }
  if (!cfg->cert || !cfg->key || !cfg->address_file) {
    rc = mg_err_set(err, -ENOMEM, "out of memory");
    goto out;
  }
  if (*cfg->pack_url && !*cfg->pack_signers) {
    size_t k = 0;
    while (strcmp(plain_sections[k].name, "pack") != 0)
      k++;
    rc = mg_err_set(err, -EINVAL,
                    "%s:%d: [pack] url needs allowed_signers (only signed "
                    "packs are activated)",
                    name, seen[k]);
    goto out;
  }
  cfg->log_level += MG_LOG_ERR; /* enum index -> syslog priority */
  *out = cfg;
  cfg = NULL;
out:
  mg_ini_free(&ini);
  mg_config_free(cfg);
  return rc;
}

int mg_config_load(const char *path, struct mg_config **out, struct mg_err *err) {
  FILE *f = fopen(path, "rb");
  struct mg_buf b;
  char chunk[4096];
  size_t n;
  int rc;

  mg_buf_init(&b);
  *out = NULL;
  if (!f)
    return mg_err_set(err, -errno, "%s: cannot open: %s", path, strerror(errno));
  while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
    mg_buf_append(&b, chunk, n);
    if (b.len > (1u << 20)) {
      fclose(f);
      mg_buf_free(&b);
      return mg_err_set(err, -EFBIG, "%s: larger than 1 MiB", path);
    }
  }
  rc = ferror(f) ? mg_err_set(err, -EIO, "%s: read error", path) : 0;
  fclose(f);
  if (!rc && b.oom)
    rc = mg_err_set(err, -ENOMEM, "out of memory");
  if (!rc)
    rc = mg_config_parse(b.data ? b.data : "", b.len, path, out, err);
  mg_buf_free(&b);
  return rc;
}

/* ---------------------------------------------------------------------- */
/* Documentation                                                           */

static const char *type_name(const struct mg_config_item *it) {
  switch (it->type) {
  case MG_CFG_STR: return "string";
  case MG_CFG_INT: return "integer";
  case MG_CFG_BOOL: return "boolean";
  case MG_CFG_DURATION: return "duration";
  case MG_CFG_SIZE: return "size";
  case MG_CFG_ENUM: return "one of";
  case MG_CFG_LIST: return "list";
  default: return "?";
  }
}

void mg_config_doc_table(struct mg_buf *out, const char *section,
                         const struct mg_config_item *table) {
  for (const struct mg_config_item *it = table; it && it->name; it++) {
    mg_buf_printf(out, "| `%s` | `%s` | %s", section, it->name, type_name(it));
    if (it->type == MG_CFG_ENUM) {
      /* a | inside a cell would split the Markdown table */
      mg_buf_puts(out, " `");
      for (const char *c = it->choices; c && *c; c++) {
        if (*c == '|')
          mg_buf_puts(out, "`, `");
        else
          mg_buf_putc(out, *c);
      }
      mg_buf_putc(out, '`');
    }
    if (it->min < it->max)
      mg_buf_printf(out, " (%lld–%lld)", (long long)it->min, (long long)it->max);
    if (it->flags & MG_CFG_REQUIRED)
      mg_buf_puts(out, " | *required*");
    else if (it->def && *it->def)
      mg_buf_printf(out, " | `%s`", it->def);
    else
      mg_buf_puts(out, " | (none)");
    mg_buf_printf(out, " | %s%s |\n", it->desc,
                  (it->flags & MG_CFG_RELOAD) ? " Reloaded by SIGHUP." : "");
  }
}

void mg_config_doc(struct mg_buf *out) {
  mg_buf_puts(out, "| section | key | type | default | meaning |\n"
                   "|---|---|---|---|---|\n");
  for (size_t i = 0; i < sizeof(plain_sections) / sizeof(plain_sections[0]); i++) {
    char sec[64];
    snprintf(sec, sizeof(sec), "[%s]", plain_sections[i].name);
    mg_config_doc_table(out, sec, plain_sections[i].items);
  }
  mg_config_doc_table(out, "[TYPE \"ID\"]", device_items);
}
