/*
 * visit_json.c — a case as the API shows it (docs/api.md "Cases"): the
 * guide state computed from its pack, people with support-measure masking
 * applied for the asking counter, statuses and notes.
 */
#include <errno.h>
#include <string.h>

#include "visit.h"
#include "visit_internal.h"

static void list_json(struct mg_jw *w, const char *key,
                      const struct mg_pack_list *l) {
  mg_jw_key(w, key);
  mg_jw_arr(w);
  for (size_t i = 0; i < l->n; i++)
    mg_jw_str(w, l->v[i]);
  mg_jw_arr_end(w);
}

static void question_json(struct mg_jw *w, const struct mg_pack_question *q) {
  mg_jw_kstr(w, "id", q->id);
  mg_jw_kstr(w, "text", q->text);
  mg_jw_kstr(w, "help", q->help);
}

const char *mg_visit_proc_status(const struct mg_visit *v,
                                 const struct mg_pack_procedure *pr) {
  for (size_t i = 0; i < v->n_statuses; i++)
    if (strcmp(v->statuses[i].procedure, pr->id) == 0 &&
        strcmp(v->statuses[i].counter, pr->counter) == 0)
      return v->statuses[i].status;
  return "pending";
}

/* The status at the procedure's own counter, and every counter's. */
static void status_json(struct mg_jw *w, const struct mg_visit *v,
                        const struct mg_pack_procedure *pr) {
  mg_jw_kstr(w, "status", mg_visit_proc_status(v, pr));
  mg_jw_key(w, "statuses");
  mg_jw_arr(w);
  for (size_t i = 0; i < v->n_statuses; i++) {
    const struct mg_visit_status *s = &v->statuses[i];
    if (strcmp(s->procedure, pr->id) != 0)
      continue;
    mg_jw_obj(w);
    mg_jw_kstr(w, "counter", s->counter);
    mg_jw_kstr(w, "status", s->status);
    mg_jw_kstr(w, "by", s->by);
    mg_jw_kstr(w, "at", s->at);
    mg_jw_obj_end(w);
  }
  mg_jw_arr_end(w);
}

static void procedure_json(struct mg_jw *w, const struct mg_visit *v,
                           const struct mg_pack *p,
                           const struct mg_guide_state *gs,
                           const struct mg_guide_proc *gp) {
  static const char *const src[] = {"auto", "added", "removed"};
  const struct mg_pack_procedure *pr = gp->p;
  const struct mg_pack_counter *c = mg_pack_counter(p, pr->counter);
  mg_jw_obj(w);
  mg_jw_kstr(w, "id", pr->id);
  mg_jw_kstr(w, "name", pr->name);
  mg_jw_kstr(w, "kind", pr->kind == MG_PACK_PROC_INFO ? "info" : "form");
  mg_jw_kstr(w, "source", src[gp->source]);
  mg_jw_key(w, "counter");
  mg_jw_obj(w);
  mg_jw_kstr(w, "id", pr->counter);
  mg_jw_kstr(w, "name", c ? c->name : "");
  mg_jw_kstr(w, "floor", c ? c->floor : "");
  mg_jw_kstr(w, "department", c ? c->department : "");
  mg_jw_kstr(w, "note", c ? c->note : "");
  mg_jw_obj_end(w);
  list_json(w, "documents", &pr->documents);
  list_json(w, "forms", &pr->forms);
  mg_jw_kstr(w, "notes", pr->notes);
  mg_jw_kstr(w, "deadline", pr->deadline);
  mg_jw_key(w, "people");
  if (gp->per_person) {
    mg_jw_arr(w);
    for (size_t i = 0; i < gs->in->n_people; i++)
      if (gp->who[i])
        mg_jw_int(w, (int64_t)i);
    mg_jw_arr_end(w);
  } else {
    mg_jw_null(w); /* the household */
  }
  mg_jw_key(w, "reasons");
  if (gp->source == MG_GUIDE_ADDED)
    mg_jw_raw(w, "[{\"added_by_staff\":true}]");
  else
    mg_guide_reasons_json(gs, gp, w);
  status_json(w, v, pr);
  mg_jw_obj_end(w);
}

void mg__visit_notes_json(struct mg_jw *w, const struct mg_visit *v) {
  mg_jw_key(w, "notes");
  mg_jw_arr(w);
  for (size_t i = 0; i < v->n_notes; i++) {
    mg_jw_obj(w);
    mg_jw_kstr(w, "author", v->notes[i].author);
    mg_jw_kstr(w, "counter", v->notes[i].counter);
    mg_jw_kstr(w, "at", v->notes[i].at);
    mg_jw_kstr(w, "text", v->notes[i].text);
    mg_jw_obj_end(w);
  }
  mg_jw_arr_end(w);
}

int mg_visit_state_json(struct mg_visits *vs, const struct mg_visit *v,
                        const struct mg_visit_actor *a, struct mg_jw *w,
                        struct mg_err *err) {
  struct mg_pack_use *u = mg_visits_pack(vs, v);
  const struct mg_pack *p = u ? mg_pack_use_model(u) : NULL;
  struct mg_guide_input in;
  struct mg_guide_state gs;
  struct mg_date births[MG_GUIDE_MAX_PEOPLE];
  const struct mg_pack_life_event *le;
  int rc, any_masked = 0;

  memset(&gs, 0, sizeof(gs));
  if (!p) {
    rc = mg_err_set(err, -ENODATA, "the pack release of this case (%.12s) is "
                    "no longer on the box", v->pack_commit);
    goto out;
  }
  if ((rc = mg_visit_guide(v, p, &in, births, &gs))) {
    rc = mg_err_set(err, rc, "the guide cannot be computed");
    goto out;
  }
  le = mg_pack_life_event(p, v->life_event);

  mg_jw_obj(w);
  mg_jw_kstr(w, "id", v->id);
  mg_jw_kstr(w, "number", v->number);
  char disp[10];
  snprintf(disp, sizeof(disp), "%.4s-%.4s", v->number, v->number + 4);
  mg_jw_kstr(w, "number_display", disp);
  mg_jw_key(w, "life_event");
  mg_jw_obj(w);
  mg_jw_kstr(w, "id", v->life_event);
  mg_jw_kstr(w, "name", le ? le->name : "");
  mg_jw_obj_end(w);
  mg_jw_kstr(w, "pack_commit", v->pack_commit);
  mg_jw_kstr(w, "status", v->status);
  mg_jw_kstr(w, "counter", v->counter);
  mg_jw_kstr(w, "created_by", v->created_by);
  mg_jw_kstr(w, "created_at", v->created_at);
  mg_jw_kstr(w, "filing_date", v->filing_date);
  mg_jw_kstr(w, "closed_at", v->closed_at[0] ? v->closed_at : NULL);
  mg_jw_kbool(w, "has_mynumber_card", v->has_mynumber_card);
  mg_jw_kbool(w, "foreign_resident", v->foreign_resident);

  mg_jw_key(w, "people");
  mg_jw_arr(w);
  for (size_t i = 0; i < v->n_people; i++) {
    const struct mg_visit_person *pp = &v->people[i];
    int masked = mg_visit_masked(v, a, i);
    char date[16] = "";
    any_masked |= masked;
    mg_jw_obj(w);
    mg_jw_kint(w, "index", (int64_t)i);
    mg_jw_kstr(w, "name", pp->name);
    mg_jw_kstr(w, "kana", pp->kana);
    if (pp->birth.y)
      mg_date_format(&pp->birth, date, sizeof(date));
    mg_jw_kstr(w, "birth_date", date[0] ? date : NULL);
    if (i < gs.in->n_people && pp->birth.y)
      mg_jw_kint(w, "age", mg_age_legal(&pp->birth, &in.filing));
    /* C2: masked here, by the server, not hidden by the UI */
    mg_jw_kstr(w, "address", masked ? NULL : pp->address);
    mg_jw_kbool(w, "address_masked", masked);
    mg_jw_kbool(w, "support", pp->support);
    mg_jw_obj_end(w);
  }
  mg_jw_arr_end(w);
  mg_jw_key(w, "support");
  mg_jw_obj(w);
  mg_jw_kstr(w, "counter", v->support_counter[0] ? v->support_counter : NULL);
  mg_jw_kbool(w, "masked_here", any_masked);
  mg_jw_kstr(w, "unmasked_until",
             v->unmasked_until[0] ? v->unmasked_until : NULL);
  mg_jw_obj_end(w);

  mg_jw_key(w, "progress");
  mg_jw_obj(w);
  mg_jw_kint(w, "answered", (int64_t)gs.answered);
  mg_jw_kint(w, "total", (int64_t)gs.total);
  mg_jw_kbool(w, "complete", gs.next == NULL);
  mg_jw_obj_end(w);
  mg_jw_key(w, "next_question");
  if (gs.next) {
    mg_jw_obj(w);
    question_json(w, gs.next);
    mg_jw_obj_end(w);
  } else {
    mg_jw_null(w);
  }
  mg_jw_key(w, "answered");
  mg_jw_arr(w);
  for (size_t i = 0; i < gs.n_qs; i++) {
    const struct mg_guide_question *gq = &gs.qs[i];
    if (!gq->asked || gq->answer < 0)
      continue;
    mg_jw_obj(w);
    question_json(w, gq->q);
    mg_jw_kstr(w, "answer", gq->answer ? "yes" : "no");
    mg_jw_obj_end(w);
  }
  mg_jw_arr_end(w);

  mg_jw_key(w, "procedures");
  mg_jw_arr(w);
  for (size_t i = 0; i < gs.n_procs; i++)
    procedure_json(w, v, p, &gs, &gs.procs[i]);
  mg_jw_arr_end(w);

  mg__visit_notes_json(w, v);
  mg_jw_kstr(w, "slip_text", v->free_text);
  mg_jw_obj_end(w);
out:
  mg_guide_state_free(&gs);
  mg_visits_pack_release(vs, u);
  return rc;
}
