/*
 * config.h — madoguchid.conf: an INI file read through declarative tables
 * (struct mg_config_item, shared with plugins; see madoguchi/plugin.h).
 *
 * Syntax: `[section]` or `[type "id"]`; `key = value`; `;` or `#` start a
 * comment at the start of a line or after white space; a value may be put
 * in double quotes to keep ; # or edge spaces.  A UTF-8 BOM is accepted.
 * Every problem (unknown section or key, bad value, duplicate) is an error
 * naming file:line, and nothing starts.  docs/config.md is generated from
 * the same tables (`madoguchid --config-doc`) and a test keeps them equal.
 */
#ifndef MG_CONFIG_H
#define MG_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include <madoguchi/plugin.h>

#include "buf.h"
#include "err.h"

/* One `key = value` line as read, kept for plugin sections whose table is
 * known only once the plugin is loaded. */
struct mg_config_kv {
  char *key;
  char *value;
  int line;
};

/* A device section: [reader "id"], [printer "id"], ... */
struct mg_config_device {
  char *type;           /* "reader", "printer", "pad", "camera", ... */
  char *id;             /* the quoted name */
  int line;             /* line of the section header */
  /* host keys (see device_items in config.c) */
  char *plugin;
  struct mg_config_list counters; /* `counter` and `counters` together */
  int enabled;
  /* every other key, for the plugin's own table */
  struct mg_config_kv *kv;
  size_t n_kv;
};

struct mg_config {
  char *path; /* as given, for messages */

  /* [daemon] */
  char *state_dir;
  char *runtime_dir;
  char *plugin_dir;
  char *web_dir;
  int log_level;          /* enum mg_log_level */
  char *ctl_group;        /* group allowed on ctl.sock besides our uid/root */

  /* [http] */
  char *listen;           /* "host:port", checked */
  int64_t max_body;       /* bytes */
  int64_t request_timeout;/* ms: a request must arrive within it */
  int64_t idle_timeout;   /* ms: keep-alive connections close after it */
  int64_t max_connections;
  int64_t drain_timeout;  /* ms: how long SIGTERM waits for requests */
  int64_t static_max_age; /* ms: Cache-Control for web/ assets */

  /* [tls] */
  char *cert;             /* default state_dir/tls/cert.pem */
  char *key;              /* default state_dir/tls/key.pem */
  int tls_min;            /* 0: TLS 1.2, 1: TLS 1.3 */

  /* [pack] */
  char *pack_url;         /* "" = no pack source */
  char *pack_branch;
  char *pack_signers;     /* allowed_signers file */
  char *pack_ssh_key;     /* deploy key for ssh:// */
  char *pack_ssh_host_key; /* pinned host key fingerprint */
  char *pack_ca_file;     /* extra CAs for https:// */
  int64_t pack_interval;  /* ms between pulls; 0 = only on demand */
  int64_t pack_keep;      /* releases kept for rollback */
  /* [auth] */
  char *auth_users_file;  /* seed users; "" = none */
  int auth_require_tablet;
  /* [visits] */
  int64_t visit_retention;  /* ms after closing until the purge */
  char *visit_close_at;     /* "HH:MM" or "" */
  int64_t visit_search_days;
  int64_t visit_unmask_for; /* ms */
  /* [address] */
  char *address_file;       /* the national address dictionary (I1);
                               default state_dir/address.db */
  /* [sync] the city's tenant (issue 8, sync/tenant_sync.h) */
  char *sync_url;           /* "https://…"; "" = sync off */
  char *sync_ca_file;       /* the tenant's CA; "" = the system's */
  int64_t sync_batch;       /* records per POST */
  int64_t sync_interval;    /* ms between looks for due rows */
  int64_t sync_timeout;     /* ms for one request */
  int64_t sync_fetch_timeout; /* ms a resume waits for a fresher copy */
  int64_t sync_backoff_min; /* ms */
  int64_t sync_backoff_max; /* ms */
  int64_t sync_circuit_after; /* failures in a row that open the circuit */
  int64_t sync_circuit_open;  /* ms the circuit stays open */
  int64_t sync_retention;   /* ms an acknowledged application is kept (D1) */
  int64_t sync_warn_depth;  /* queue depth that warns */

  struct mg_config_device *devices;
  size_t n_devices;
};

/* Read and check a file.  0 and *out, or a negative errno and err
 * ("FILE:LINE: rule"). */
int mg_config_load(const char *path, struct mg_config **out, struct mg_err *err);
/* The same from memory; `name` stands for the file in messages. */
int mg_config_parse(const char *text, size_t len, const char *name,
                    struct mg_config **out, struct mg_err *err);
void mg_config_free(struct mg_config *cfg);

/* The plugin kind a device section type declares ("reader" ->
 * MG_PLUGIN_KIND_CARD_READER), or 0. */
int mg_config_device_kind(const char *type);

/* Split a checked listen value into host and port. */
int mg_config_listen_split(const char *listen, char *host, size_t hostlen,
                           int *port);

/*
 * Table machinery, shared with the plugin host.
 */
/* Store defaults of every item into base (strings duplicated). */
int mg_config_defaults(const struct mg_config_item *table, void *base,
                       struct mg_err *err);
/* Convert and store one value; NULL when fine, else the rule broken. */
const char *mg_config_set(const struct mg_config_item *it, void *base,
                          const char *value);
/* Apply key/value lines to base through the table: defaults first, then
 * each line; an unknown key, bad value or missing required key is an
 * error naming file:line.  `where` names the section for messages. */
int mg_config_apply(const struct mg_config_item *table, void *base,
                    const struct mg_config_kv *kv, size_t n_kv,
                    const char *file, int section_line, const char *where,
                    struct mg_err *err);
/* Free the strings and lists that the table stored into base. */
void mg_config_release(const struct mg_config_item *table, void *base);
const struct mg_config_item *mg_config_find(const struct mg_config_item *table,
                                            const char *key);

/* Markdown reference of every key (docs/config.md's table). */
void mg_config_doc(struct mg_buf *out);
/* One table as markdown rows (also used for a plugin's keys). */
void mg_config_doc_table(struct mg_buf *out, const char *section,
                         const struct mg_config_item *table);

#endif
