/*
 * visit_card.h — an ID card read into a case (I7).  See visit_card.c.
 */
#ifndef MG_VISIT_CARD_H
#define MG_VISIT_CARD_H

#include "err.h"
#include "visit.h"

/* What the card gave (borrowed; NULL or "" = not on the card). */
struct mg_visit_card {
  const char *type;       /* "mynumber" | "license" | "residence" */
  const char *name, *kana, *address;
  const char *birth_date; /* ISO 8601 */
  const char *sex;        /* "male" | "female" | "not_applicable" */
  const char *my_number;  /* 12 digits, check digit valid */
};

/* Fill person `person` (1-based; 0 = a new person after the last) of case
 * `id` with the card's values, source "card", in one sealed change audited
 * as visit.card.  *person_out gets the row filled.  -EPERM when the case's
 * addresses are masked at this counter (C2), -EINVAL for a bad person,
 * -ENOENT / -ESTALE as for every change. */
int mg_visit_card_fill(struct mg_visits *vs, const struct mg_visit_actor *a,
                       const char *id, long person,
                       const struct mg_visit_card *card, long *person_out,
                       struct mg_err *err);

#endif
