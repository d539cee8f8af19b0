/*
 * guide.c — which questions are asked and which procedures are proposed
 * (guide.h).  Everything is recomputed from scratch on every call: a life
 * event has tens of questions and a pack tens of procedures, so a full pass
 * costs microseconds and there is no incremental state to get wrong.
 */
#include "guide.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Evaluation context: the state so far and the person `age` refers to
 * (-1: nobody, so `age` is unknown). */
struct ev {
  const struct mg_guide_state *st;
  int person;
  long facts_num[4]; /* household_size, children_under_18, school_children,
                        preschool_children */
  int ages[MG_GUIDE_MAX_PEOPLE];
};

static int lookup(void *ctx, const char *name, long *val) {
  const struct ev *e = ctx;
  const struct mg_guide_input *in = e->st->in;
  if (strcmp(name, "age") == 0) {
    if (e->person < 0 || e->ages[e->person] < 0)
      return -1;
    *val = e->ages[e->person];
    return 0;
  }
  static const char *const nums[] = {"household_size", "children_under_18",
                                     "school_children", "preschool_children"};
  for (size_t i = 0; i < 4; i++)
    if (strcmp(name, nums[i]) == 0) {
      *val = e->facts_num[i];
      return 0;
    }
  if (strcmp(name, "has_mynumber_card") == 0) {
    *val = in->has_mynumber_card != 0;
    return 0;
  }
  if (strcmp(name, "foreign_resident") == 0) {
    *val = in->foreign_resident != 0;
    return 0;
  }
  /* a question: known only when asked and answered */
  for (size_t i = 0; i < e->st->n_qs; i++) {
    const struct mg_guide_question *gq = &e->st->qs[i];
    if (strcmp(gq->q->id, name) == 0) {
      if (!gq->asked || gq->answer < 0)
        return -1;
      *val = gq->answer;
      return 0;
    }
  }
  return -1;
}

static int names_age(const struct mg_expr *x) {
  if (!x)
    return 0;
  if (x->op == MG_EXPR_NAME && strcmp(x->name, "age") == 0)
    return 1;
  return names_age(x->a) || names_age(x->b);
}

/* Evaluate a condition (NULL = always) for the household, or per person
 * when it names `age`: true when it holds for anyone; `who` (may be NULL)
 * gets the people it holds for. */
static int holds(struct ev *e, const struct mg_expr *cond, unsigned char *who) {
  size_t n = e->st->in->n_people;
  if (!cond)
    return 1;
  if (!names_age(cond) || n == 0) {
    e->person = -1;
    return mg_expr_eval(cond, lookup, e) == 1;
  }
  int any = 0;
  for (size_t i = 0; i < n; i++) {
    e->person = (int)i;
    int r = mg_expr_eval(cond, lookup, e) == 1;
    if (who)
      who[i] = (unsigned char)r;
    any |= r;
  }
  e->person = -1;
  return any;
}

static int cmp_questions(const void *a, const void *b) {
  const struct mg_guide_question *x = a, *y = b;
  if (x->q->order != y->q->order)
    return x->q->order < y->q->order ? -1 : 1;
  return x->q < y->q ? -1 : x->q > y->q; /* file order */
}

static int manual_of(const struct mg_guide_input *in, const char *proc) {
  int r = -1;
  for (size_t i = 0; i < in->n_manual; i++)
    if (strcmp(in->manual[i].procedure, proc) == 0)
      r = in->manual[i].add != 0;
  return r;
}

static void household_facts(struct ev *e) {
  const struct mg_guide_input *in = e->st->in;
  e->facts_num[0] = (long)in->n_people;
  for (size_t i = 0; i < in->n_people; i++) {
    const struct mg_date *b = &in->births[i];
    e->ages[i] = -1;
    if (b->y == 0)
      continue;
    e->ages[i] = mg_age_legal(b, &in->filing);
    if (e->ages[i] < 0)
      continue; /* born after the filing date: not counted */
    int g = mg_school_grade(b, &in->filing);
    e->facts_num[1] += g <= 12;
    e->facts_num[2] += g >= 1 && g <= 9;
    e->facts_num[3] += g <= 0;
  }
}

int mg_guide_compute(const struct mg_guide_input *in, struct mg_guide_state *st) {
  const struct mg_pack *p = in->pack;
  struct ev e;

  memset(st, 0, sizeof(*st));
  st->in = in;
  if (in->n_people > MG_GUIDE_MAX_PEOPLE)
    return -EINVAL;
  if (!mg_pack_life_event(p, in->life_event))
    return -ENOENT;
  st->qs = calloc(p->n_questions ? p->n_questions : 1, sizeof(*st->qs));
  st->procs = calloc(p->n_procedures ? p->n_procedures : 1, sizeof(*st->procs));
  if (!st->qs || !st->procs) {
    mg_guide_state_free(st);
    return -ENOMEM;
  }
  for (size_t i = 0; i < p->n_questions; i++)
    if (strcmp(p->questions[i].life_event, in->life_event) == 0)
      st->qs[st->n_qs++] = (struct mg_guide_question){&p->questions[i], 0, -1};
  qsort(st->qs, st->n_qs, sizeof(*st->qs), cmp_questions);

  memset(&e, 0, sizeof(e));
  e.st = st;
  e.person = -1;
  household_facts(&e);

  /* Walk in asking order: each condition sees the questions before it,
   * whose `asked` is already final (lookup ignores later ones, which are
   * still unasked here). */
  for (size_t i = 0; i < st->n_qs; i++) {
    struct mg_guide_question *gq = &st->qs[i];
    gq->asked = holds(&e, gq->q->condition, NULL);
    if (!gq->asked)
      continue;
    for (size_t k = 0; k < in->n_answers; k++)
      if (strcmp(in->answers[k].question, gq->q->id) == 0)
        gq->answer = in->answers[k].yes != 0;
    st->total++;
    if (gq->answer >= 0)
      st->answered++;
    else if (!st->next)
      st->next = gq->q;
  }

  for (size_t i = 0; i < p->n_procedures; i++) {
    const struct mg_pack_procedure *pr = &p->procedures[i];
    struct mg_guide_proc *gp = &st->procs[st->n_procs];
    int man = manual_of(in, pr->id);
    int auto_on = 0;
    memset(gp, 0, sizeof(*gp));
    gp->p = pr;
    gp->per_person = names_age(pr->condition) && in->n_people > 0;
    if (mg_pack_list_has(&pr->life_events, in->life_event))
      auto_on = holds(&e, pr->condition, gp->who);
    if (auto_on)
      gp->source = man == 0 ? MG_GUIDE_REMOVED : MG_GUIDE_AUTO;
    else if (man == 1) {
      gp->source = MG_GUIDE_ADDED; /* by hand: for the household */
      gp->per_person = 0;
    }
    else
      continue;
    st->n_procs++;
  }
  return 0;
}

void mg_guide_state_free(struct mg_guide_state *st) {
  free(st->qs);
  free(st->procs);
  memset(st, 0, sizeof(*st));
}

const struct mg_guide_question *mg_guide_question(const struct mg_guide_state *st,
                                                  const char *id) {
  for (size_t i = 0; i < st->n_qs; i++)
    if (strcmp(st->qs[i].q->id, id) == 0)
      return &st->qs[i];
  return NULL;
}

/* Each name once, in the order it appears. */
static void collect_names(const struct mg_expr *x, const char **v, size_t *n,
                          size_t max) {
  if (!x)
    return;
  if (x->op == MG_EXPR_NAME) {
    for (size_t i = 0; i < *n; i++)
      if (strcmp(v[i], x->name) == 0)
        return;
    if (*n < max)
      v[(*n)++] = x->name;
    return;
  }
  collect_names(x->a, v, n, max);
  collect_names(x->b, v, n, max);
}

void mg_guide_reasons_json(const struct mg_guide_state *st,
                           const struct mg_guide_proc *gp, struct mg_jw *w) {
  const char *names[64];
  size_t n = 0;
  struct ev e;
  memset(&e, 0, sizeof(e));
  e.st = st;
  e.person = -1;
  household_facts(&e);
  collect_names(gp->p->condition, names, &n, 64);
  mg_jw_arr(w);
  for (size_t i = 0; i < n; i++) {
    const struct mg_guide_question *gq = mg_guide_question(st, names[i]);
    long v;
    mg_jw_obj(w);
    if (gq || lookup(&e, names[i], &v) < 0) {
      if (strcmp(names[i], "age") == 0) {
        mg_jw_kstr(w, "fact", "age");
        mg_jw_key(w, "value");
        mg_jw_arr(w);
        for (size_t k = 0; k < st->in->n_people; k++)
          if (!gp->per_person || gp->who[k])
            if (e.ages[k] >= 0)
              mg_jw_int(w, e.ages[k]);
        mg_jw_arr_end(w);
      } else {
        mg_jw_kstr(w, "question", names[i]);
        mg_jw_kstr(w, "answer", !gq || !gq->asked || gq->answer < 0
                                    ? "unanswered"
                                    : gq->answer ? "yes" : "no");
      }
    } else {
      mg_jw_kstr(w, "fact", names[i]);
      if (strcmp(names[i], "has_mynumber_card") == 0 ||
          strcmp(names[i], "foreign_resident") == 0)
        mg_jw_kbool(w, "value", v != 0);
      else
        mg_jw_kint(w, "value", v);
    }
    mg_jw_obj_end(w);
  }
  mg_jw_arr_end(w);
}
