/*
 * guide.h — the yes/no guide (G1, G3): from a pack, a life event, the
 * household and the answers so far, which questions are asked, which one
 * comes next, and which procedures are proposed and why.
 *
 * Pure computation over the pack model: no I/O, no allocation beyond the
 * state; the visit layer (visit.c) stores answers and calls this again
 * after every change, so re-answering a question recomputes everything
 * that depends on it.
 *
 * Rules (docs/packs.md "Expressions", reference §6.2 "世帯員ごとに評価"):
 *   - A question is asked when its condition holds; questions are walked in
 *     their order, and a condition sees only the answers of questions
 *     asked before it.  An answer to a question that is no longer asked is
 *     kept but ignored (it comes back if the question is asked again).
 *   - `age` is evaluated per person of the household: a condition naming
 *     `age` holds when it holds for at least one person, and a procedure
 *     records for whom.  With nobody's birth date known, `age` is unknown
 *     (comparisons with it are false).
 *   - Household facts: household_size, children_under_18 (高校生年代まで:
 *     school grade <= 12 on the filing date), school_children (小1–中3),
 *     preschool_children (born, not yet 小1), has_mynumber_card,
 *     foreign_resident.
 *   - Staff may add any procedure of the pack by hand, or remove a proposed
 *     one; both are kept as decisions of the visit.
 */
#ifndef MG_GUIDE_H
#define MG_GUIDE_H
#include <stddef.h>
#include "jp.h"
#include "json.h"
#include "pack.h"

#define MG_GUIDE_MAX_PEOPLE 32

struct mg_guide_answer {
  const char *question; /* borrowed */
  int yes;              /* 1 はい, 0 いいえ */
};

struct mg_guide_manual {
  const char *procedure; /* borrowed */
  int add;               /* 1 added by hand, 0 removed by hand */
};

struct mg_guide_input {
  const struct mg_pack *pack;
  const char *life_event;
  struct mg_date filing;
  const struct mg_date *births; /* n_people entries; y == 0: unknown */
  size_t n_people;              /* <= MG_GUIDE_MAX_PEOPLE */
  int has_mynumber_card, foreign_resident;
  const struct mg_guide_answer *answers;
  size_t n_answers;
  const struct mg_guide_manual *manual;
  size_t n_manual;
};

/* A question of the life event, in asking order. */
struct mg_guide_question {
  const struct mg_pack_question *q;
  int asked;  /* its condition holds now */
  int answer; /* -1 unanswered (or not asked), else 0/1 */
};

enum mg_guide_source { MG_GUIDE_AUTO = 0, MG_GUIDE_ADDED, MG_GUIDE_REMOVED };

struct mg_guide_proc {
  const struct mg_pack_procedure *p;
  enum mg_guide_source source; /* REMOVED: proposed, but removed by hand */
  int per_person;              /* the condition names `age` */
  unsigned char who[MG_GUIDE_MAX_PEOPLE]; /* per_person: 1 = for this person */
};

struct mg_guide_state {
  const struct mg_guide_input *in; /* borrowed, for the reasons */
  struct mg_guide_question *qs;    /* the life event's questions */
  size_t n_qs;
  const struct mg_pack_question *next; /* NULL: nothing left to ask */
  size_t answered, total;              /* progress over asked questions */
  struct mg_guide_proc *procs;         /* in the pack's order */
  size_t n_procs;
};

/* Compute.  0, -ENOENT (unknown life event), -EINVAL (too many people),
 * -ENOMEM.  Answers and manual decisions naming unknown ids are ignored
 * here (the API refuses them before storing). */
int mg_guide_compute(const struct mg_guide_input *in, struct mg_guide_state *st);
void mg_guide_state_free(struct mg_guide_state *st);

/* The question by id within the life event (NULL when not one of it). */
const struct mg_guide_question *mg_guide_question(const struct mg_guide_state *st,
                                                  const char *id);

/* Why a procedure is proposed, as a JSON array of
 * {"question": id, "answer": "yes"|"no"|"unanswered"} and
 * {"fact": name, "value": N|true|false|null} for every name of its
 * condition ("age" lists the ages of the people it holds for). */
void mg_guide_reasons_json(const struct mg_guide_state *st,
                           const struct mg_guide_proc *gp, struct mg_jw *w);

#endif
