/*
 * address.h — the national address dictionary (I1): Japan Post's KEN_ALL
 * data imported into a read-only SQLite file, looked up by postal code and
 * searched by free text (kanji or kana).
 *
 * Import reads both of Japan Post's formats: the classic Shift_JIS
 * KEN_ALL.CSV (half-width kana, long towns split over several lines) and
 * the UTF-8 utf_ken_all.csv (one line a record, full-width kana).  Each
 * record is normalised as Japan Post documents its quirks:
 *   - a town opened with （ and closed on a later line (same postal code)
 *     is joined, kana columns too;
 *   - 「以下に掲載がない場合」 and 「○○の次に番地がくる場合」: the town is
 *     empty and the phrase becomes the note;
 *   - 「○○一円」 where ○○ ends the city name (the whole municipality): the
 *     town is empty, note 一円 (滋賀県犬上郡多賀町 「一円」 is a real town
 *     and stays);
 *   - a bracket 「大通西（１〜１９丁目）」, 「（次のビルを除く）」,
 *     「（地階・階層不明）」, 「（１階）」: the town is the part before it
 *     (searched), the bracket's text is the note.
 * Kana are stored as full-width katakana (mg_kana_key).  A 全国地方公共団体
 * コード of 00000 (data that does not carry it) is stored and shown as "".
 *
 * Queries are never logged: residents type them (privacy rule).
 */
#ifndef MG_ADDRESS_H
#define MG_ADDRESS_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "json.h"

#define MG_ADDR_SEARCH_MAX 100 /* the largest `limit` of a search */

/* An open dictionary, read-only.  One connection with prepared statements:
 * use it from one thread at a time (the daemon: the loop thread only).
 * Another process or thread may import over the same path meanwhile: the
 * open file keeps answering from the old data until reopened. */
struct mg_addr_db;

/* One address.  Strings (UTF-8, never NULL, "" when empty) are valid only
 * during the callback that receives it. */
struct mg_addr {
  const char *postal_code; /* 7 digits */
  const char *pref, *city, *town;
  const char *pref_kana, *city_kana, *town_kana; /* full-width katakana */
  const char *note;      /* the bracket remark, e.g. 次のビルを除く; "" none */
  const char *city_code; /* 5 digits (JIS X 0402 without check digit), or "" */
};

/* Import a KEN_ALL file (src, encoding detected: UTF-8 with or without a
 * BOM, else Shift_JIS via iconv, CP932 extensions accepted) into a NEW
 * SQLite database built at "<dst>.tmp", fsync'd and renamed over dst
 * (atomic replace: a reader of the old file is never disturbed).  A
 * malformed line stops the import with err = "FILE:LINE: rule" (wrong
 * column count, a postal code that is not 7 digits, an unterminated
 * multi-line town at end of file, invalid encoding...) and leaves dst as it
 * was; so does a file without any address.  *rows (out, may be NULL) =
 * addresses stored.  Thread-safe (own connection); takes seconds for the
 * national file, so the daemon runs it on a worker. */
int mg_addr_import(const char *src, const char *dst, size_t *rows,
                   struct mg_err *err);

/* Open dst read-only.  0 and *out (owned, mg_addr_close); -ENOENT when no
 * dictionary was imported yet; -EPROTO when the file is not one of ours or
 * of a newer format; -EIO for a damaged file. */
int mg_addr_open(const char *path, struct mg_addr_db **out,
                 struct mg_err *err);
void mg_addr_close(struct mg_addr_db *db); /* NULL is fine */

/* Rows and import time ("2026-04-01T09:30:00Z") of an open dictionary. */
int64_t mg_addr_rows(const struct mg_addr_db *db);
const char *mg_addr_imported_at(const struct mg_addr_db *db);

/* Normalise a typed postal code (in) into 7 ASCII digits (out, NUL-ended):
 * "7450004", "745-0004", full-width digits and hyphens (７４５－０００４),
 * a leading 〒 and surrounding spaces are accepted.  0, or -EINVAL with
 * err naming the rule. */
int mg_addr_postal_normalize(const char *in, char out[8], struct mg_err *err);

/* Called once per address, best first; a non-zero return stops the walk
 * and is returned by the walker. */
typedef int (*mg_addr_fn)(void *ud, const struct mg_addr *a);

/* Addresses of a postal code (see mg_addr_postal_normalize), in the
 * file's order; none is not an error.  -EINVAL for a malformed code. */
int mg_addr_postal_each(struct mg_addr_db *db, const char *code,
                        mg_addr_fn fn, void *ud, struct mg_err *err);

/* Free text, kanji or kana (hiragana, katakana and half-width all match,
 * spaces and ・ ignored, full-width ASCII folded): at most `limit`
 * (1..MG_ADDR_SEARCH_MAX) addresses, best first.  First names that begin
 * with the text: a town equal to it, then a city (as a whole) or a whole
 * name 都道府県+市区町村(+町域) equal to it, then towns beginning with it,
 * then cities and prefectures beginning with it; shorter names first
 * within each.  Then, for texts of three characters or more, addresses
 * whose whole name contains it anywhere (kanji or kana), shorter first,
 * among the first 2,000 such in postal code order.  A text that is a
 * postal code (mg_addr_postal_normalize) finds that code's addresses.
 * -EINVAL for an empty or over-long (200 bytes) text or a limit out of
 * range. */
int mg_addr_search_each(struct mg_addr_db *db, const char *q, size_t limit,
                        mg_addr_fn fn, void *ud, struct mg_err *err);

/* One address as a JSON object:
 * {"postal_code":"7450004","pref":"山口県","city":"周南市","town":"毛利町",
 *  "pref_kana":"ヤマグチケン","city_kana":"シュウナンシ","town_kana":"モウリマチ",
 *  "note":"","city_code":"35215"} plus "district" when district is not
 * NULL (F3, from the active pack). */
void mg_addr_write(struct mg_jw *w, const struct mg_addr *a,
                   const char *district);

/* The walkers above writing a JSON array of mg_addr_write objects (possibly
 * empty) into w.  Same results as the walkers. */
int mg_addr_by_postal(struct mg_addr_db *db, const char *code,
                      struct mg_jw *w, struct mg_err *err);
int mg_addr_search(struct mg_addr_db *db, const char *q, size_t limit,
                   struct mg_jw *w, struct mg_err *err);

#endif
