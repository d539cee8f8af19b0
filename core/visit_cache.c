/*
 * visit_cache.c — the last few case states as the API shows them
 * (visit_cache.h).  A linear array: 256 entries compared by a 32-byte id
 * cost far less than one SQLite read.
 */
#include "visit_cache.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "visit_internal.h"

struct entry {
  char id[33];          /* "" when the slot is free */
  char counter[72];
  char pack_commit[48];
  int64_t version;
  time_t born;          /* mg_visit_cache_now() when put */
  uint64_t used;        /* the cache's tick at the last hit: LRU */
  char *json;           /* residents' data: wiped before free */
  size_t len;
};

struct mg_visit_cache {
  struct entry e[MG_VISIT_CACHE_MAX];
  uint64_t tick;
};

time_t mg_visit_cache_now(void) {
  struct timespec ts;
  if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
    return 0;
  return ts.tv_sec;
}

static void wipe(struct entry *x) {
  if (x->json) {
    OPENSSL_cleanse(x->json, x->len);
    free(x->json);
  }
  memset(x, 0, sizeof(*x));
}

int mg_visit_cache_create(struct mg_visit_cache **out) {
  *out = calloc(1, sizeof(**out));
  return *out ? 0 : -ENOMEM;
}

void mg_visit_cache_free(struct mg_visit_cache *c) {
  if (!c)
    return;
  mg_visit_cache_drop(c, NULL);
  free(c);
}

int mg_visit_cache_version(struct mg_visits *vs, const char *id,
                           int64_t *version) {
  sqlite3_stmt *s = mg__visit_stmt(vs, "SELECT version FROM visits WHERE id = ?1");
  int rc = -EIO;
  if (!s || sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC) != SQLITE_OK)
    goto out;
  rc = sqlite3_step(s);
  if (rc == SQLITE_ROW) {
    *version = sqlite3_column_int64(s, 0);
    rc = 0;
  } else {
    rc = rc == SQLITE_DONE ? -ENOENT : -EIO;
  }
out:
  mg__visit_stmt_done(vs, s);
  return rc;
}

int mg_visit_cache_ok(const struct mg_visit *v) {
  struct mg_date f;
  return strcmp(v->status, "open") == 0 && !v->support_counter[0] &&
         !v->unmasked_until[0] && mg_date_parse(v->filing_date, &f) == 0;
}

static int fresh(const struct entry *x, time_t now) {
  return now - x->born < MG_VISIT_CACHE_TTL_S && now >= x->born;
}

int mg_visit_cache_get(struct mg_visit_cache *c, const char *id,
                       int64_t version, const char *counter, time_t now,
                       struct mg_buf *out, char pack_commit[48]) {
  struct entry *hit = NULL;
  if (!c)
    return -ENOENT;
  for (size_t i = 0; i < MG_VISIT_CACHE_MAX; i++) {
    struct entry *x = &c->e[i];
    if (!x->id[0] || strcmp(x->id, id) != 0)
      continue;
    if (x->version != version || !fresh(x, now))
      wipe(x); /* the case changed since: its old state goes */
    else if (strcmp(x->counter, counter) == 0)
      hit = x;
  }
  if (!hit)
    return -ENOENT;
  hit->used = ++c->tick;
  mg_buf_append(out, hit->json, hit->len);
  memcpy(pack_commit, hit->pack_commit, sizeof(hit->pack_commit));
  return 0;
}

void mg_visit_cache_put(struct mg_visit_cache *c, const char *id,
                        int64_t version, const char *counter,
                        const char *pack_commit, time_t now, const char *json,
                        size_t len) {
  struct entry *slot = NULL;
  if (!c || strlen(id) >= sizeof(slot->id) ||
      strlen(counter) >= sizeof(slot->counter) ||
      strlen(pack_commit) >= sizeof(slot->pack_commit))
    return;
  for (size_t i = 0; i < MG_VISIT_CACHE_MAX; i++) {
    struct entry *x = &c->e[i];
    if (x->id[0] && strcmp(x->id, id) == 0 &&
        (x->version != version || strcmp(x->counter, counter) == 0))
      wipe(x); /* an older state, or this one again */
    if (x->id[0] && !fresh(x, now))
      wipe(x);
    if (!x->id[0]) {
      if (!slot || slot->id[0])
        slot = x;
    } else if (!slot || (slot->id[0] && x->used < slot->used)) {
      slot = x; /* least recently used, unless a free slot turns up */
    }
  }
  wipe(slot);
  if (!(slot->json = malloc(len ? len : 1)))
    return;
  memcpy(slot->json, json, len);
  slot->len = len;
  memcpy(slot->id, id, strlen(id) + 1);
  memcpy(slot->counter, counter, strlen(counter) + 1);
  memcpy(slot->pack_commit, pack_commit, strlen(pack_commit) + 1);
  slot->version = version;
  slot->born = now;
  slot->used = ++c->tick;
}

void mg_visit_cache_drop(struct mg_visit_cache *c, const char *id) {
  for (size_t i = 0; c && i < MG_VISIT_CACHE_MAX; i++)
    if (c->e[i].id[0] && (!id || strcmp(c->e[i].id, id) == 0))
      wipe(&c->e[i]);
}

void mg_visit_cache_expire(struct mg_visit_cache *c, time_t now) {
  for (size_t i = 0; c && i < MG_VISIT_CACHE_MAX; i++)
    if (c->e[i].id[0] && !fresh(&c->e[i], now))
      wipe(&c->e[i]);
}
