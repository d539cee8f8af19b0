/*
 * visit_card.c — what an ID card read puts into a case (I7, A1, I2).
 *
 * The card's person becomes person N of the case: name, kana, birth date
 * and address go to the people (the guide and every form read them) and
 * are stored as values with source "card" under the household.* keys of
 * row N (and applicant.* for person 1), so every form that carries them
 * shows where they came from.  Sex is stored only when a form of the pack
 * asks for it (as that field's choice), the 個人番号 only when a form open
 * in the case carries it: it is kept where a form needs it, sealed with the
 * rest of the personal data, and nowhere else.
 */
#include "visit_card.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "form.h"
#include "visit_internal.h"

/* The first field of the pack (any form) carrying `key`; with `open`, only
 * among the sheets open in the case. */
static const struct mg_pack_field *
carrier(const struct mg_pack *p, const char *key,
        const struct mg_visit_form *fs, size_t n, int open) {
  for (size_t i = 0; i < (open ? n : p->n_forms); i++) {
    const struct mg_pack_form *f = open ? fs[i].form : &p->forms[i];
    for (size_t k = 0; k < f->n_fields; k++)
      if (strcmp(f->fields[k].carry, key) == 0)
        return &f->fields[k];
  }
  return NULL;
}

/* The choice value of a sex field whose label starts with 男 or 女. */
static const char *sex_choice(const struct mg_pack *p,
                              const struct mg_pack_field *f, const char *sex) {
  const char *want = strcmp(sex, "male") == 0     ? "\xE7\x94\xB7" /* 男 */
                     : strcmp(sex, "female") == 0 ? "\xE5\xA5\xB3" /* 女 */
                                                  : NULL;
  const struct mg_pack_choice_list *l = want ? mg_pack_choices(p, f->choices)
                                             : NULL;
  for (size_t i = 0; l && i < l->n; i++)
    if (strncmp(l->v[i].label, want, 3) == 0)
      return l->v[i].value;
  return NULL;
}

struct fill {
  struct mg__change *ch;
  const struct mg_visit_actor *a;
  const struct mg_visit_form *fs;
  size_t n_fs;
  struct mg_visit_person **people;
  size_t *np;
  char now[24];
  char *kept[32]; /* normalised texts the people point into */
  size_t n_kept;
};

/* Store `raw` under key/row (normalised by the field that carries it) and,
 * for the basic four, write it through to the people. */
static int put(struct fill *fl, const char *key, long row, const char *raw,
               int need_open) {
  const struct mg_pack *p = fl->ch->p;
  const struct mg_pack_field *fld =
      carrier(p, key, fl->fs, fl->n_fs, need_open);
  int pk = mg__people_key(key), valid = 1, rc;
  char *norm = NULL;
  struct mg_err verr = {{0}};
  struct mg__fctx c;
  if (!raw || !*raw || (!fld && pk < 0))
    return 0; /* nothing read, or no form wants it */
  if (fld) {
    mg__ctx_init(&c, fl->ch->v, p, fl->a);
    rc = mg_form_check(p, fld, raw, NULL, &c.filing, &norm, &verr);
    if (rc && rc != -EINVAL)
      return rc;
    valid = rc == 0; /* kept as read; the form shows the rule it breaks */
  } else if (!(norm = strdup(raw))) {
    return -ENOMEM;
  }
  rc = mg__put_value(fl->ch->v, key, row, norm, "card", "", fl->a, fl->now);
  if (rc == 0 && pk >= 0) {
    if (fl->n_kept == sizeof(fl->kept) / sizeof(fl->kept[0]))
      rc = -E2BIG;
    else if (!(rc = mg__people_through(pk, row, norm, valid, fl->people,
                                       fl->np))) {
      fl->kept[fl->n_kept++] = norm;
      norm = NULL;
    }
  }
  if (norm) {
    OPENSSL_cleanse(norm, strlen(norm));
    free(norm);
  }
  return rc;
}

int mg_visit_card_fill(struct mg_visits *vs, const struct mg_visit_actor *a,
                       const char *id, long person,
                       const struct mg_visit_card *card, long *person_out,
                       struct mg_err *err) {
  struct mg__change ch;
  struct mg_visit_form *fs = NULL;
  struct mg_visit_person *people = NULL;
  size_t n = 0, np = 0;
  struct mg__fctx c;
  struct fill fl;
  char detail[96];
  memset(&fl, 0, sizeof(fl));
  int rc = mg__visit_begin(vs, a, id, &ch, err);
  if (rc || (rc = mg__open_sheets(&ch, a, &c, &fs, &n, err)))
    goto out;
  if (person == 0)
    person = (long)ch.v->n_people + 1;
  if (person < 1 || person > (long)ch.v->n_people + 1 ||
      person > MG_GUIDE_MAX_PEOPLE) {
    rc = mg_err_set(err, -EINVAL, "person: from 1 to %zu (or 0 for a new "
                    "person)",
                    ch.v->n_people + 1 < MG_GUIDE_MAX_PEOPLE
                        ? ch.v->n_people + 1
                        : (size_t)MG_GUIDE_MAX_PEOPLE);
    goto out;
  }
  if (c.masked && card->address && *card->address) {
    rc = mg_err_set(err, -EPERM, "the addresses of this case are masked at "
                    "this counter; read the card at counter %s",
                    ch.v->support_counter);
    goto out;
  }
  if (!(people = calloc(MG_GUIDE_MAX_PEOPLE, sizeof(*people)))) {
    rc = mg_err_set(err, -ENOMEM, "out of memory");
    goto out;
  }
  np = ch.v->n_people;
  memcpy(people, ch.v->people, np * sizeof(*people));
  fl.ch = &ch;
  fl.a = a;
  fl.fs = fs;
  fl.n_fs = n;
  fl.people = &people;
  fl.np = &np;
  mg_store_time(time(NULL), fl.now);
  static const char *const prefix[] = {"household", "applicant"};
  for (int k = 0; k < (person == 1 ? 2 : 1) && !rc; k++) {
    long row = k ? 0 : person;
    char key[48];
    const char *sex = NULL;
#define PUT(field, val, open)                                                  \
  (snprintf(key, sizeof(key), "%s." field, prefix[k]),                         \
   put(&fl, key, row, (val), (open)))
    if ((rc = PUT("name", card->name, 0)) || (rc = PUT("kana", card->kana, 0)) ||
        (rc = PUT("birth_date", card->birth_date, 0)) ||
        (rc = PUT("address", card->address, 0)) ||
        (rc = PUT("mynumber", card->my_number, 1)))
      break;
    snprintf(key, sizeof(key), "%s.sex", prefix[k]);
    const struct mg_pack_field *sf = card->sex ? carrier(ch.p, key, fs, n, 0)
                                               : NULL;
    if (sf && (sex = sex_choice(ch.p, sf, card->sex)))
      rc = PUT("sex", sex, 0);
#undef PUT
  }
  if (rc) {
    rc = mg_err_set(err, rc == -E2BIG ? -E2BIG : -ENOMEM,
                    rc == -E2BIG ? "too many values from one card"
                                 : "out of memory");
    goto out;
  }
  for (size_t i = 0; i < np; i++) { /* a new person: "" not NULL */
    if (!people[i].name)
      people[i].name = "";
    if (!people[i].kana)
      people[i].kana = "";
    if (!people[i].address)
      people[i].address = "";
  }
  snprintf(detail, sizeof(detail), "person %ld %s", person,
           card->type ? card->type : "card");
  rc = mg__visit_store(vs, a, ch.v, people, np, ch.v->free_text, NULL, NULL, 0,
                       "visit.card", detail, err);
  if (rc == 0 && person_out)
    *person_out = person;
out:
  for (size_t i = 0; i < fl.n_kept; i++) {
    OPENSSL_cleanse(fl.kept[i], strlen(fl.kept[i]));
    free(fl.kept[i]);
  }
  free(people);
  free(fs);
  mg__visit_end(vs, &ch);
  return rc;
}
