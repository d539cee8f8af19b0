/*
 * test_guide.c — the yes/no guide engine (core/guide.h) over real packs:
 * the city's demo pack packs/shunan, the fixture tests/fixtures/packs/mini,
 * and a copy of mini with two extra procedures whose reasons show the
 * household facts and the ages exactly, and two extra questions for the
 * asking order.
 *
 * Every expectation below was worked out by hand from the pack CSVs
 * (questions.csv, procedures.csv) and the legal rules of core/jp.h; the
 * comments give the arithmetic.  The filing date is fixed (2024-06-10,
 * school year 2024) unless a test says otherwise.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* mkdtemp, nftw */
#endif
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "guide.h"
#include "jp.h"
#include "json.h"
#include "pack.h"

#define SHUNAN MG_TEST_SOURCE_DIR "/packs/shunan"
#define MINI MG_TEST_SOURCE_DIR "/tests/fixtures/packs/mini"

static struct mg_pack *shunan, *mini, *derived;
static char derived_dir[64];

/* ---- helpers ---------------------------------------------------------- */

static struct mg_date D(int y, int m, int d) { return (struct mg_date){y, m, d}; }

static const struct mg_date FILING = {2024, 6, 10};

/* Born `years` years before `on`, moved by `days` (negative: earlier). */
static struct mg_date born(struct mg_date on, int years, int days) {
  struct mg_date b = on;
  b.y -= years;
  mg_date_add_days(&b, days);
  return b;
}

/* Everything one computation needs, kept alive while the state is used
 * (the state borrows the input). */
struct run {
  struct mg_guide_input in;
  struct mg_guide_state st;
  struct mg_date births[MG_GUIDE_MAX_PEOPLE + 8];
  struct mg_guide_answer ans[32];
  struct mg_guide_manual man[16];
  int rc;
};

static void run_init(struct run *r, const struct mg_pack *p, const char *le,
                     struct mg_date filing) {
  memset(r, 0, sizeof(*r));
  r->in.pack = p;
  r->in.life_event = le;
  r->in.filing = filing;
  r->in.births = r->births;
  r->in.answers = r->ans;
  r->in.manual = r->man;
}

static void person(struct run *r, struct mg_date b) { r->births[r->in.n_people++] = b; }

static void answer(struct run *r, const char *q, int yes) {
  for (size_t i = 0; i < r->in.n_answers; i++)
    if (strcmp(r->ans[i].question, q) == 0) { /* re-answer in place */
      r->ans[i].yes = yes;
      return;
    }
  r->ans[r->in.n_answers++] = (struct mg_guide_answer){q, yes};
}

static void manual(struct run *r, const char *proc, int add) {
  r->man[r->in.n_manual++] = (struct mg_guide_manual){proc, add};
}

/* (Re)compute; the previous state is freed. */
static void compute(struct run *r) {
  mg_guide_state_free(&r->st);
  r->rc = mg_guide_compute(&r->in, &r->st);
  assert_int_equal(r->rc, 0);
}

static void done(struct run *r) { mg_guide_state_free(&r->st); }

/* The asked questions, comma-separated, in asking order. */
static const char *asked(const struct run *r) {
  static char s[2048];
  s[0] = 0;
  for (size_t i = 0; i < r->st.n_qs; i++)
    if (r->st.qs[i].asked) {
      if (s[0])
        strcat(s, ",");
      strcat(s, r->st.qs[i].q->id);
    }
  return s;
}

/* The listed procedures in order: "+" after added, "-" after removed. */
static const char *procs(const struct run *r) {
  static char s[4096];
  s[0] = 0;
  for (size_t i = 0; i < r->st.n_procs; i++) {
    if (s[0])
      strcat(s, ",");
    strcat(s, r->st.procs[i].p->id);
    if (r->st.procs[i].source == MG_GUIDE_ADDED)
      strcat(s, "+");
    else if (r->st.procs[i].source == MG_GUIDE_REMOVED)
      strcat(s, "-");
  }
  return s;
}

static const struct mg_guide_proc *proc(const struct run *r, const char *id) {
  for (size_t i = 0; i < r->st.n_procs; i++)
    if (strcmp(r->st.procs[i].p->id, id) == 0)
      return &r->st.procs[i];
  return NULL;
}

static int is_asked(const struct run *r, const char *id) {
  const struct mg_guide_question *q = mg_guide_question(&r->st, id);
  assert_non_null(q);
  return q->asked;
}

/* who[] as "10010" for the first n people. */
static const char *who(const struct run *r, const char *id) {
  static char s[MG_GUIDE_MAX_PEOPLE + 1];
  const struct mg_guide_proc *gp = proc(r, id);
  assert_non_null(gp);
  assert_true(gp->per_person);
  size_t n = r->in.n_people;
  for (size_t i = 0; i < n; i++)
    s[i] = gp->who[i] ? '1' : '0';
  s[n] = 0;
  for (size_t i = n; i < MG_GUIDE_MAX_PEOPLE; i++)
    assert_int_equal(gp->who[i], 0); /* nobody beyond the household */
  return s;
}

static const char *next_id(const struct run *r) {
  return r->st.next ? r->st.next->id : "(none)";
}

/* The reasons JSON of a listed procedure. */
static const char *reasons(const struct run *r, const char *id) {
  static char s[4096];
  struct mg_buf b;
  struct mg_jw w;
  const struct mg_guide_proc *gp = proc(r, id);
  assert_non_null(gp);
  mg_buf_init(&b);
  mg_jw_init(&w, &b);
  mg_guide_reasons_json(&r->st, gp, &w);
  assert_false(w.bad);
  assert_false(b.oom);
  snprintf(s, sizeof(s), "%s", b.data ? b.data : "");
  mg_buf_free(&b);
  return s;
}

static void copy_tree(const char *from, const char *to) {
  DIR *d = opendir(from);
  struct dirent *de;
  assert_non_null(d);
  assert_int_equal(mkdir(to, 0700) == 0 || errno == EEXIST, 1);
  while ((de = readdir(d)) != NULL) {
    char a[4096], b[4096];
    struct stat st;
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
      continue;
    snprintf(a, sizeof(a), "%s/%s", from, de->d_name);
    snprintf(b, sizeof(b), "%s/%s", to, de->d_name);
    assert_int_equal(stat(a, &st), 0);
    if (S_ISDIR(st.st_mode)) {
      copy_tree(a, b);
      continue;
    }
    FILE *in = fopen(a, "rb"), *out = fopen(b, "wb");
    assert_non_null(in);
    assert_non_null(out);
    char buf[8192];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
      assert_int_equal(fwrite(buf, 1, n, out), n);
    fclose(in);
    fclose(out);
  }
  closedir(d);
}

static void append(const char *dir, const char *file, const char *text) {
  char path[512];
  snprintf(path, sizeof(path), "%s/%s", dir, file);
  FILE *f = fopen(path, "ab");
  assert_non_null(f);
  assert_int_equal(fputs(text, f) >= 0, 1);
  fclose(f);
}

static int rm_one(const char *p, const struct stat *st, int flag,
                  struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  return remove(p);
}

static struct mg_pack *load(const char *dir) {
  struct mg_pack_report rep;
  struct mg_pack *p = NULL;
  mg_pack_report_init(&rep);
  int rc = mg_pack_load(dir, &p, &rep);
  if (rc != 0) {
    mg_pack_report_print(&rep, stderr);
    fail_msg("pack %s does not load (%d)", dir, rc);
  }
  mg_pack_report_free(&rep);
  return p;
}

static int group_setup(void **state) {
  (void)state;
  shunan = load(SHUNAN);
  mini = load(MINI);
  /* mini + a question asked first (order 0, last in the file), one tied
   * with kokuho_other (order 1, later in the file: asked after it), and
   * two always-true procedures whose reasons list the facts and ages.
   * procedures.csv of mini has CRLF line ends, questions.csv LF. */
  snprintf(derived_dir, sizeof(derived_dir), "/tmp/mg-guide-XXXXXX");
  assert_non_null(mkdtemp(derived_dir));
  copy_tree(MINI, derived_dir);
  append(derived_dir, "questions.csv",
         "zz_first,tennyu,0,最初に聞く,,\n"
         "zz_tie,tennyu,1,同じ順番,,\n");
  append(derived_dir, "procedures.csv",
         "facts,世帯の事実,info,tennyu,shimin-1,household_size >= 0 and "
         "children_under_18 >= 0 and school_children >= 0 and "
         "preschool_children >= 0,,,,\r\n"
         "ages,年齢,info,tennyu,shimin-1,age >= 0,,,,\r\n");
  derived = load(derived_dir);
  return 0;
}

static int group_teardown(void **state) {
  (void)state;
  mg_pack_free(shunan);
  mg_pack_free(mini);
  mg_pack_free(derived);
  nftw(derived_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
  return 0;
}

/* The exact household facts via the derived pack's "facts" procedure. */
static const char *facts_of(const struct mg_date *b, size_t n,
                            struct mg_date filing) {
  static char s[512];
  struct run r;
  run_init(&r, derived, "tennyu", filing);
  for (size_t i = 0; i < n; i++)
    person(&r, b[i]);
  compute(&r);
  snprintf(s, sizeof(s), "%s", reasons(&r, "facts"));
  done(&r);
  return s;
}

#define FACTS(size, u18, school, pre)                                         \
  "[{\"fact\":\"household_size\",\"value\":" #size                            \
  "},{\"fact\":\"children_under_18\",\"value\":" #u18                         \
  "},{\"fact\":\"school_children\",\"value\":" #school                        \
  "},{\"fact\":\"preschool_children\",\"value\":" #pre "}]"

/* ---- questions -------------------------------------------------------- */

/* One adult of 40 (born 1984-01-15).  tennyu questions in order, with
 * their conditions for this household:
 *   tn_shien (always) yes; tn_tokurei (has_mynumber_card) no;
 *   tn_seiho yes; tn_shaho (age<75 and not tn_seiho: tn_seiho unanswered
 *   reads false, so "not" holds) yes; tn_kousei (20<=age<60) yes;
 *   tn_shougai yes; tn_kouki_nintei (65..74) no; tn_youkaigo (>=65) no;
 *   tn_jidouteate, tn_hitorioya (children_under_18>0) no; tn_ninshin yes;
 *   tn_hoiku (preschool>0) no; tn_tennyugaku (school>0) no; tn_gakudou no;
 *   tn_inkan (>=15) yes; tn_gentsuki (>=16) yes; tn_inu yes. */
static void test_questions_in_order_and_skipped(void **state) {
  (void)state;
  struct run r;
  static const char *const all[] = {
      "tn_shien",      "tn_tokurei",   "tn_seiho",        "tn_shaho",
      "tn_kousei",     "tn_shougai",   "tn_kouki_nintei", "tn_youkaigo",
      "tn_jidouteate", "tn_hitorioya", "tn_ninshin",      "tn_hoiku",
      "tn_tennyugaku", "tn_gakudou",   "tn_inkan",        "tn_gentsuki",
      "tn_inu"};

  run_init(&r, shunan, "tennyu", FILING);
  person(&r, D(1984, 1, 15));
  compute(&r);
  assert_int_equal(r.st.n_qs, 17); /* every tennyu question, none other */
  for (size_t i = 0; i < 17; i++)
    assert_string_equal(r.st.qs[i].q->id, all[i]);
  assert_string_equal(asked(&r), "tn_shien,tn_seiho,tn_shaho,tn_kousei,"
                                 "tn_shougai,tn_ninshin,tn_inkan,tn_gentsuki,"
                                 "tn_inu");
  assert_int_equal(r.st.total, 9);
  assert_int_equal(r.st.answered, 0);
  assert_string_equal(next_id(&r), "tn_shien");
  assert_null(mg_guide_question(&r.st, "ts_kokuho")); /* another event */
  assert_null(mg_guide_question(&r.st, "nope"));

  /* tn_tokurei only with a My Number card: asked right after tn_shien */
  r.in.has_mynumber_card = 1;
  compute(&r);
  assert_string_equal(asked(&r), "tn_shien,tn_tokurei,tn_seiho,tn_shaho,"
                                 "tn_kousei,tn_shougai,tn_ninshin,tn_inkan,"
                                 "tn_gentsuki,tn_inu");
  assert_int_equal(r.st.total, 10);
  answer(&r, "tn_shien", 0);
  compute(&r);
  assert_string_equal(next_id(&r), "tn_tokurei");
  r.in.has_mynumber_card = 0;
  compute(&r);
  assert_string_equal(next_id(&r), "tn_seiho");
  done(&r);

  /* A school child (born 2015-05-05: 小学校入学 2022-04, grade 3 in school
   * year 2024) with the adult: the child questions are asked, tn_gakudou
   * only once tn_tennyugaku is yes. */
  run_init(&r, shunan, "tennyu", FILING);
  person(&r, D(1984, 1, 15));
  person(&r, D(2015, 5, 5));
  compute(&r);
  assert_string_equal(asked(&r), "tn_shien,tn_seiho,tn_shaho,tn_kousei,"
                                 "tn_shougai,tn_jidouteate,tn_hitorioya,"
                                 "tn_ninshin,tn_tennyugaku,tn_inkan,"
                                 "tn_gentsuki,tn_inu");
  assert_false(is_asked(&r, "tn_gakudou")); /* tn_tennyugaku unanswered */
  assert_false(is_asked(&r, "tn_hoiku"));   /* nobody preschool */
  answer(&r, "tn_tennyugaku", 1);
  compute(&r);
  assert_true(is_asked(&r, "tn_gakudou"));
  assert_int_equal(r.st.total, 13);
  answer(&r, "tn_tennyugaku", 0);
  compute(&r);
  assert_false(is_asked(&r, "tn_gakudou"));
  assert_int_equal(r.st.total, 12);
  done(&r);

  /* tn_tennyugaku yes (an answer left over) but no school child: neither
   * it nor tn_gakudou is asked, and the answers change nothing. */
  run_init(&r, shunan, "tennyu", FILING);
  person(&r, D(1984, 1, 15));
  answer(&r, "tn_tennyugaku", 1);
  answer(&r, "tn_gakudou", 1);
  compute(&r);
  assert_false(is_asked(&r, "tn_tennyugaku"));
  assert_false(is_asked(&r, "tn_gakudou"));
  assert_int_equal(mg_guide_question(&r.st, "tn_tennyugaku")->answer, -1);
  assert_int_equal(mg_guide_question(&r.st, "tn_gakudou")->answer, -1);
  assert_int_equal(r.st.answered, 0);
  assert_null(proc(&r, "tennyugaku"));
  assert_null(proc(&r, "gakudou"));
  done(&r);
}

/* Re-answering an earlier question changes which later ones are asked;
 * the answers of questions no longer asked are ignored but come back. */
static void test_reanswer_changes_later_questions(void **state) {
  (void)state;
  struct run r;

  run_init(&r, shunan, "tennyu", FILING);
  person(&r, D(1984, 1, 15));
  person(&r, D(2015, 5, 5)); /* grade 3 */
  answer(&r, "tn_tennyugaku", 1);
  answer(&r, "tn_gakudou", 1);
  compute(&r);
  assert_int_equal(mg_guide_question(&r.st, "tn_gakudou")->answer, 1);
  assert_non_null(proc(&r, "tennyugaku"));
  assert_non_null(proc(&r, "gakudou"));
  assert_int_equal(r.st.answered, 2);
  assert_int_equal(r.st.total, 13);

  answer(&r, "tn_tennyugaku", 0);
  compute(&r);
  assert_false(is_asked(&r, "tn_gakudou"));
  assert_int_equal(mg_guide_question(&r.st, "tn_gakudou")->answer, -1);
  assert_null(proc(&r, "gakudou")); /* its yes is ignored */
  assert_null(proc(&r, "tennyugaku"));
  assert_int_equal(r.st.answered, 1);
  assert_int_equal(r.st.total, 12);

  answer(&r, "tn_tennyugaku", 1); /* back: the kept answer counts again */
  compute(&r);
  assert_int_equal(mg_guide_question(&r.st, "tn_gakudou")->answer, 1);
  assert_non_null(proc(&r, "gakudou"));
  done(&r);

  /* tn_seiho yes: tn_shaho is no longer asked, its "no" is ignored, so
   * kokuho_kanyu (age<75 and not tn_shaho and not tn_seiho) is not
   * proposed; with tn_seiho no, tn_shaho "no" counts and it is. */
  run_init(&r, shunan, "tennyu", FILING);
  person(&r, D(1984, 1, 15));
  answer(&r, "tn_shaho", 0);
  answer(&r, "tn_seiho", 1);
  compute(&r);
  assert_false(is_asked(&r, "tn_shaho"));
  assert_int_equal(mg_guide_question(&r.st, "tn_shaho")->answer, -1);
  assert_null(proc(&r, "kokuho_kanyu"));
  answer(&r, "tn_seiho", 0);
  compute(&r);
  assert_true(is_asked(&r, "tn_shaho"));
  assert_int_equal(mg_guide_question(&r.st, "tn_shaho")->answer, 0);
  assert_non_null(proc(&r, "kokuho_kanyu"));
  answer(&r, "tn_shaho", 1); /* company insurance: no 国保 */
  compute(&r);
  assert_null(proc(&r, "kokuho_kanyu"));
  done(&r);

  /* shibou: sb_kouki (not sb_kokuho), sb_sousai (sb_kokuho or sb_kouki) */
  run_init(&r, shunan, "shibou", FILING);
  answer(&r, "sb_sousai", 1);
  answer(&r, "sb_kokuho", 1);
  answer(&r, "sb_kouki", 1);
  compute(&r);
  assert_false(is_asked(&r, "sb_kouki"));
  assert_true(is_asked(&r, "sb_sousai"));
  assert_string_equal(procs(&r), "okuyami_moushide,kokuho_shibou,sousaihi");
  answer(&r, "sb_kokuho", 0); /* → sb_kouki asked (and yes, kept) */
  compute(&r);
  assert_true(is_asked(&r, "sb_kouki"));
  assert_true(is_asked(&r, "sb_sousai"));
  assert_string_equal(procs(&r), "okuyami_moushide,kouki_shibou,sousaihi");
  answer(&r, "sb_kouki", 0); /* neither insurance: no 葬祭費 question */
  compute(&r);
  assert_false(is_asked(&r, "sb_sousai"));
  assert_int_equal(mg_guide_question(&r.st, "sb_sousai")->answer, -1);
  assert_string_equal(procs(&r), "okuyami_moushide");
  done(&r);

  /* mini: kokuho_family (not kokuho_other), school (school_children > 0
   * and (kokuho_family = yes or household_size >= 2)); one school child
   * alone (born 2015-05-05). */
  run_init(&r, mini, "tennyu", FILING);
  person(&r, D(2015, 5, 5));
  compute(&r);
  assert_string_equal(asked(&r), "kokuho_other,kokuho_family");
  answer(&r, "kokuho_family", 1);
  compute(&r);
  assert_string_equal(asked(&r), "kokuho_other,kokuho_family,school");
  answer(&r, "school", 1);
  answer(&r, "kokuho_other", 1);
  compute(&r);
  assert_string_equal(asked(&r), "kokuho_other");
  assert_string_equal(procs(&r), "tennyu_todoke"); /* school yes ignored */
  answer(&r, "kokuho_other", 0);
  compute(&r);
  assert_string_equal(asked(&r), "kokuho_other,kokuho_family,school");
  assert_string_equal(procs(&r), "tennyu_todoke,kokuho_kanyu,gakko");
  done(&r);
}

/* Progress counts the asked questions only. */
static void test_progress(void **state) {
  (void)state;
  struct run r;
  /* shibou, nobody's birth date: 12 questions; sb_kouki is asked (not
   * sb_kokuho, unanswered), sb_sousai is not (sb_kokuho or sb_kouki both
   * unanswered) → 11. */
  run_init(&r, shunan, "shibou", FILING);
  compute(&r);
  assert_int_equal(r.st.n_qs, 12);
  assert_int_equal(r.st.total, 11);
  assert_int_equal(r.st.answered, 0);
  assert_string_equal(next_id(&r), "sb_setainushi");

  answer(&r, "sb_inu", 1); /* out of order: next stays the first */
  answer(&r, "zz_unknown", 1); /* ignored */
  compute(&r);
  assert_int_equal(r.st.answered, 1);
  assert_string_equal(next_id(&r), "sb_setainushi");

  answer(&r, "sb_setainushi", 1);
  answer(&r, "sb_nenkin", 0);
  compute(&r);
  assert_int_equal(r.st.answered, 3);
  assert_int_equal(r.st.total, 11);
  assert_string_equal(next_id(&r), "sb_kokuho");

  answer(&r, "sb_kokuho", 1); /* sb_kouki out, sb_sousai in */
  compute(&r);
  assert_int_equal(r.st.answered, 4);
  assert_int_equal(r.st.total, 11);
  assert_string_equal(next_id(&r), "sb_sousai");

  static const char *const rest[] = {"sb_sousai", "sb_kaigo", "sb_inkan",
                                     "sb_jidouteate", "sb_shougai",
                                     "sb_kotei", "sb_gentsuki"};
  for (size_t i = 0; i < 7; i++) {
    answer(&r, rest[i], (int)(i % 2));
    compute(&r);
    assert_int_equal(r.st.answered, 5 + i);
  }
  assert_int_equal(r.st.answered, 11);
  assert_int_equal(r.st.total, 11);
  assert_null(r.st.next);

  answer(&r, "sb_kokuho", 0); /* sb_kouki comes back, unanswered; sb_sousai
                                 goes (sb_kouki unanswered) */
  compute(&r);
  assert_int_equal(r.st.total, 11);
  assert_int_equal(r.st.answered, 10);
  assert_string_equal(next_id(&r), "sb_kouki");
  done(&r);

  /* the asking order is the `order` cell, ties in file order (derived
   * pack: zz_first has order 0 but is the last row, zz_tie shares order 1
   * with kokuho_other and comes after it in the file). */
  run_init(&r, derived, "tennyu", FILING);
  compute(&r);
  assert_string_equal(asked(&r), "zz_first,kokuho_other,zz_tie,"
                                 "kokuho_family");
  assert_string_equal(next_id(&r), "zz_first");
  done(&r);
}

/* ---- age per person --------------------------------------------------- */

/* 40 (born 1984-01-15) and 66 (born 1958-03-03) on 2024-06-10. */
static void test_age_per_person(void **state) {
  (void)state;
  struct run r;
  run_init(&r, shunan, "tennyu", FILING);
  person(&r, D(1984, 1, 15));
  person(&r, D(1958, 3, 3));
  compute(&r);
  /* tn_kouki_nintei (65..74) and tn_youkaigo (>=65) are asked for the 66 */
  assert_string_equal(asked(&r), "tn_shien,tn_seiho,tn_shaho,tn_kousei,"
                                 "tn_shougai,tn_kouki_nintei,tn_youkaigo,"
                                 "tn_ninshin,tn_inkan,tn_gentsuki,tn_inu");
  /* kokuho_kanyu: both < 75 (tn_shaho/tn_seiho unanswered: "not" holds);
   * nenkin_1go: 20..59 and not tn_kousei: the 40 only; kaigo_shikaku: the
   * 66 only; senkyo_annai: both >= 18, not foreign. */
  assert_string_equal(procs(&r), "tennyu_todoke,kokuho_kanyu,nenkin_1go,"
                                 "kaigo_shikaku,senkyo_annai,gomi_annai,"
                                 "suido_annai");
  assert_string_equal(who(&r, "kaigo_shikaku"), "01");
  assert_string_equal(who(&r, "nenkin_1go"), "10");
  assert_string_equal(who(&r, "kokuho_kanyu"), "11");
  assert_string_equal(who(&r, "senkyo_annai"), "11");
  assert_false(proc(&r, "tennyu_todoke")->per_person);
  assert_false(proc(&r, "gomi_annai")->per_person);
  assert_int_equal(proc(&r, "kaigo_shikaku")->source, MG_GUIDE_AUTO);
  assert_string_equal(reasons(&r, "kaigo_shikaku"),
                      "[{\"fact\":\"age\",\"value\":[66]}]");
  assert_null(proc(&r, "kouki_kanyu")); /* nobody 75+, tn_kouki_nintei
                                           unanswered */
  /* tn_kousei yes: nenkin_1go goes for everyone */
  answer(&r, "tn_kousei", 1);
  compute(&r);
  assert_null(proc(&r, "nenkin_1go"));
  done(&r);

  /* 40 and 80 (born 1944-01-01): kouki_kanyu for the 80 only, kokuho_kanyu
   * for the 40 only; tn_kouki_nintei is not asked (nobody 65..74). */
  run_init(&r, shunan, "tennyu", FILING);
  person(&r, D(1984, 1, 15));
  person(&r, D(1944, 1, 1));
  compute(&r);
  assert_false(is_asked(&r, "tn_kouki_nintei"));
  assert_true(is_asked(&r, "tn_youkaigo"));
  assert_string_equal(who(&r, "kouki_kanyu"), "01");
  assert_string_equal(who(&r, "kokuho_kanyu"), "10");
  assert_string_equal(who(&r, "kaigo_shikaku"), "01");
  assert_string_equal(reasons(&r, "kouki_kanyu"),
                      "[{\"fact\":\"age\",\"value\":[80]},"
                      "{\"question\":\"tn_kouki_nintei\",\"answer\":"
                      "\"unanswered\"}]");
  done(&r);

  /* tenshutsu: kaigo_tenshutsu (age >= 65) for the third of three */
  run_init(&r, shunan, "tenshutsu", FILING);
  person(&r, D(1984, 1, 15));
  person(&r, D(2010, 8, 1));
  person(&r, D(1950, 12, 24));
  compute(&r);
  assert_string_equal(who(&r, "kaigo_tenshutsu"), "001");
  assert_string_equal(reasons(&r, "kaigo_tenshutsu"),
                      "[{\"fact\":\"age\",\"value\":[73]}]");
  done(&r);
}

/* The legal age (年齢計算ニ関スル法律): a year is reached at the end of the
 * day before the birthday. */
static void test_age_legal_boundary(void **state) {
  (void)state;
  struct run r;

  /* 65th birthday tomorrow (born 1959-06-11): already 65 today */
  run_init(&r, shunan, "tennyu", FILING);
  person(&r, born(FILING, 65, 1));
  assert_int_equal(r.births[0].y, 1959);
  assert_int_equal(r.births[0].m, 6);
  assert_int_equal(r.births[0].d, 11);
  compute(&r);
  assert_non_null(proc(&r, "kaigo_shikaku"));
  assert_string_equal(reasons(&r, "kaigo_shikaku"),
                      "[{\"fact\":\"age\",\"value\":[65]}]");
  assert_true(is_asked(&r, "tn_youkaigo"));
  done(&r);

  /* 65th birthday the day after tomorrow (1959-06-12): still 64 */
  run_init(&r, shunan, "tennyu", FILING);
  person(&r, born(FILING, 65, 2));
  compute(&r);
  assert_null(proc(&r, "kaigo_shikaku"));
  assert_false(is_asked(&r, "tn_youkaigo"));
  assert_false(is_asked(&r, "tn_kouki_nintei"));
  done(&r);

  /* 65th birthday today: 65 */
  run_init(&r, shunan, "tennyu", FILING);
  person(&r, born(FILING, 65, 0));
  compute(&r);
  assert_non_null(proc(&r, "kaigo_shikaku"));
  done(&r);

  /* 75 tomorrow (born 1949-06-11): kouki_kanyu by age; a day later born
   * (1949-06-12): 74, asked tn_kouki_nintei instead. */
  run_init(&r, shunan, "tennyu", FILING);
  person(&r, born(FILING, 75, 1));
  compute(&r);
  assert_string_equal(who(&r, "kouki_kanyu"), "1");
  assert_false(is_asked(&r, "tn_kouki_nintei"));
  assert_false(is_asked(&r, "tn_shaho")); /* age < 75 fails */
  assert_null(proc(&r, "kokuho_kanyu"));
  done(&r);
  run_init(&r, shunan, "tennyu", FILING);
  person(&r, born(FILING, 75, 2));
  compute(&r);
  assert_null(proc(&r, "kouki_kanyu"));
  assert_true(is_asked(&r, "tn_kouki_nintei"));
  assert_string_equal(who(&r, "kokuho_kanyu"), "1");
  done(&r);

  /* Born 2/29: in a common year the year is reached at the end of 2/28.
   * Born 1960-02-29: 65 on 2025-02-28, 64 on 2025-02-27. */
  struct mg_date f = D(2025, 3, 1);
  mg_date_add_days(&f, -1);
  assert_int_equal(f.m, 2);
  assert_int_equal(f.d, 28);
  run_init(&r, shunan, "tennyu", f);
  person(&r, D(1960, 2, 29));
  compute(&r);
  assert_string_equal(reasons(&r, "kaigo_shikaku"),
                      "[{\"fact\":\"age\",\"value\":[65]}]");
  done(&r);
  mg_date_add_days(&f, -1); /* 2025-02-27 */
  run_init(&r, shunan, "tennyu", f);
  person(&r, D(1960, 2, 29));
  compute(&r);
  assert_null(proc(&r, "kaigo_shikaku"));
  done(&r);

  /* In a leap year too, the year is reached at the end of 2/28 (the day
   * before 2/29).  Born 1964-02-29: 60 on 2024-02-28, so tn_kousei
   * (20 <= age < 60) is no longer asked and nenkin_1go not proposed; 59 on
   * 2024-02-27. */
  f = D(2024, 2, 29);
  mg_date_add_days(&f, -1);
  run_init(&r, shunan, "tennyu", f);
  person(&r, D(1964, 2, 29));
  compute(&r);
  assert_false(is_asked(&r, "tn_kousei"));
  assert_null(proc(&r, "nenkin_1go"));
  done(&r);
  mg_date_add_days(&f, -1);
  run_init(&r, shunan, "tennyu", f);
  person(&r, D(1964, 2, 29));
  compute(&r);
  assert_true(is_asked(&r, "tn_kousei"));
  assert_string_equal(who(&r, "nenkin_1go"), "1");
  done(&r);

  /* the derived pack's "ages" procedure (age >= 0) lists the ages */
  run_init(&r, derived, "tennyu", FILING);
  person(&r, born(FILING, 18, 1));  /* 18 tomorrow: 18 */
  person(&r, born(FILING, 18, 2));  /* 17 */
  person(&r, born(FILING, 0, 0));   /* born today: 0 */
  person(&r, born(FILING, 0, 1));   /* born tomorrow: not yet born */
  person(&r, D(0, 0, 0));           /* unknown */
  compute(&r);
  assert_string_equal(who(&r, "ages"), "11100");
  assert_string_equal(reasons(&r, "ages"),
                      "[{\"fact\":\"age\",\"value\":[18,17,0]}]");
  done(&r);
}

/* ---- household facts -------------------------------------------------- */

/* children_under_18 is 高3 (grade 12) and younger: a child stays counted
 * until the first March 31 on or after the day they legally turn 18 (the
 * end of the school year of 高3). */
static void test_children_under_18(void **state) {
  (void)state;
  struct run r;
  struct mg_date b;

  /* Born 2006-04-02: school from 2013-04 (4/2 cut-off), 高3 in school year
   * 2024 (2024-04-01..2025-03-31); legally 18 from 2024-04-01. */
  b = D(2006, 4, 2);
  assert_string_equal(facts_of(&b, 1, D(2024, 4, 1)), FACTS(1, 1, 0, 0));
  assert_string_equal(facts_of(&b, 1, D(2025, 3, 31)), FACTS(1, 1, 0, 0));
  assert_string_equal(facts_of(&b, 1, D(2025, 4, 1)), FACTS(1, 0, 0, 0));
  /* Born 2006-04-01: one school year earlier (高3 in 2023), legally 18 on
   * 2024-03-31, which is already the March 31 that ends it. */
  b = D(2006, 4, 1);
  assert_string_equal(facts_of(&b, 1, D(2024, 3, 31)), FACTS(1, 1, 0, 0));
  assert_string_equal(facts_of(&b, 1, D(2024, 4, 1)), FACTS(1, 0, 0, 0));

  /* the same through the shunan pack: kodomo_iryo_shikaku
   * (children_under_18 > 0) and tn_jidouteate */
  run_init(&r, shunan, "tennyu", D(2025, 3, 31));
  person(&r, D(1980, 10, 10));
  person(&r, D(2006, 4, 2));
  compute(&r);
  assert_true(is_asked(&r, "tn_jidouteate"));
  assert_true(is_asked(&r, "tn_hitorioya"));
  assert_string_equal(reasons(&r, "kodomo_iryo_shikaku"),
                      "[{\"fact\":\"children_under_18\",\"value\":1}]");
  /* the 高3 is 18: senkyo_annai for both */
  assert_string_equal(who(&r, "senkyo_annai"), "11");
  done(&r);
  run_init(&r, shunan, "tennyu", D(2025, 4, 1));
  person(&r, D(1980, 10, 10));
  person(&r, D(2006, 4, 2));
  compute(&r);
  assert_false(is_asked(&r, "tn_jidouteate"));
  assert_false(is_asked(&r, "tn_hitorioya"));
  assert_null(proc(&r, "kodomo_iryo_shikaku"));
  done(&r);
}

/* school_children: 小1..中3 by the 4/2 cut-off; preschool: born, before
 * 小1.  On 2024-06-10 (school year 2024):
 *   2018-04-01 → 小1 (school from 2024-04)      school
 *   2018-04-02 → school from 2025-04            preschool
 *   2009-04-02 → school from 2016-04: 中3        school
 *   2009-04-01 → school from 2015-04: 高1        neither (under 18) */
static void test_school_and_preschool(void **state) {
  (void)state;
  struct run r;
  struct mg_date b[5] = {D(1984, 1, 15), D(2018, 4, 1), D(2018, 4, 2),
                         D(2009, 4, 2), D(2009, 4, 1)};
  assert_string_equal(facts_of(b, 5, FILING), FACTS(5, 4, 2, 1));
  assert_string_equal(facts_of(&b[1], 1, FILING), FACTS(1, 1, 1, 0));
  assert_string_equal(facts_of(&b[2], 1, FILING), FACTS(1, 1, 0, 1));
  assert_string_equal(facts_of(&b[3], 1, FILING), FACTS(1, 1, 1, 0));
  assert_string_equal(facts_of(&b[4], 1, FILING), FACTS(1, 1, 0, 0));
  /* the last day of school year 2024, and the first of 2025: the 4/2 child
   * starts 小1, the 中3 moves on to 高1 */
  assert_string_equal(facts_of(&b[2], 1, D(2025, 3, 31)), FACTS(1, 1, 0, 1));
  assert_string_equal(facts_of(&b[2], 1, D(2025, 4, 1)), FACTS(1, 1, 1, 0));
  assert_string_equal(facts_of(&b[3], 1, D(2025, 3, 31)), FACTS(1, 1, 1, 0));
  assert_string_equal(facts_of(&b[3], 1, D(2025, 4, 1)), FACTS(1, 1, 0, 0));

  /* shunan: tn_tennyugaku (school > 0) vs tn_hoiku (preschool > 0) */
  static const struct {
    struct mg_date b;
    int school, pre;
  } c[] = {{{2018, 4, 1}, 1, 0},
           {{2018, 4, 2}, 0, 1},
           {{2009, 4, 2}, 1, 0},
           {{2009, 4, 1}, 0, 0}};
  for (size_t i = 0; i < 4; i++) {
    run_init(&r, shunan, "tennyu", FILING);
    person(&r, c[i].b);
    compute(&r);
    if (is_asked(&r, "tn_tennyugaku") != c[i].school ||
        is_asked(&r, "tn_hoiku") != c[i].pre)
      fail_msg("born %d-%02d-%02d: tn_tennyugaku %d tn_hoiku %d", c[i].b.y,
               c[i].b.m, c[i].b.d, is_asked(&r, "tn_tennyugaku"),
               is_asked(&r, "tn_hoiku"));
    done(&r);
  }

  /* a baby born on the filing day is a preschool child: boshi_hoken
   * (tn_ninshin or preschool_children > 0) is proposed and says why */
  run_init(&r, shunan, "tennyu", FILING);
  person(&r, FILING);
  compute(&r);
  assert_true(is_asked(&r, "tn_hoiku"));
  assert_string_equal(reasons(&r, "boshi_hoken"),
                      "[{\"question\":\"tn_ninshin\",\"answer\":\"unanswered\"},"
                      "{\"fact\":\"preschool_children\",\"value\":1}]");
  done(&r);

  /* a birth date after the filing date (not yet born): in the household,
   * counted nowhere else, and no age */
  struct mg_date unborn = born(FILING, 0, 1);
  assert_string_equal(facts_of(&unborn, 1, FILING), FACTS(1, 0, 0, 0));
  run_init(&r, shunan, "tennyu", FILING);
  person(&r, unborn);
  compute(&r);
  assert_false(is_asked(&r, "tn_hoiku"));
  assert_null(proc(&r, "boshi_hoken"));
  done(&r);
}

/* Nobody's birth date known: `age` is unknown, so every comparison with it
 * is false; the household facts are 0 (or the size only). */
static void test_no_people(void **state) {
  (void)state;
  struct run r;

  run_init(&r, shunan, "tennyu", FILING);
  compute(&r);
  assert_string_equal(asked(&r), "tn_shien,tn_seiho,tn_shougai,tn_ninshin,"
                                 "tn_inu");
  assert_string_equal(procs(&r), "tennyu_todoke,gomi_annai,suido_annai");
  /* even with the answers that would make kokuho_kanyu hold but for age */
  answer(&r, "tn_seiho", 0);
  answer(&r, "tn_shaho", 0);
  r.in.foreign_resident = 1;
  compute(&r);
  assert_string_equal(procs(&r), "tennyu_todoke,gaikokujin,gomi_annai,"
                                 "suido_annai");
  done(&r);

  assert_string_equal(facts_of(NULL, 0, FILING), FACTS(0, 0, 0, 0));
  struct mg_date unknown[2] = {{0, 0, 0}, {0, 0, 0}};
  assert_string_equal(facts_of(unknown, 2, FILING), FACTS(2, 0, 0, 0));

  /* people of unknown birth: as above, and per-person procedures are not
   * proposed */
  run_init(&r, derived, "tennyu", FILING);
  person(&r, unknown[0]);
  person(&r, unknown[1]);
  compute(&r);
  assert_null(proc(&r, "ages"));
  assert_null(proc(&r, "kokuho_kanyu"));
  done(&r);
  run_init(&r, derived, "tennyu", FILING);
  compute(&r);
  assert_null(proc(&r, "ages"));
  assert_false(proc(&r, "facts")->per_person);
  done(&r);

  /* mini shibou: shibou_kokuho (age >= 0) needs someone's age */
  run_init(&r, mini, "shibou", FILING);
  compute(&r);
  assert_string_equal(asked(&r), "");
  assert_int_equal(r.st.total, 0);
  assert_null(r.st.next);
  person(&r, D(1940, 1, 1));
  compute(&r);
  assert_string_equal(asked(&r), "shibou_kokuho");
  done(&r);
}

/* ---- manual decisions ------------------------------------------------- */

static void test_manual(void **state) {
  (void)state;
  struct run r;
  run_init(&r, shunan, "tennyu", FILING);
  person(&r, D(1984, 1, 15));
  compute(&r);
  assert_string_equal(procs(&r), "tennyu_todoke,kokuho_kanyu,nenkin_1go,"
                                 "senkyo_annai,gomi_annai,suido_annai");

  manual(&r, "tenshutsu_todoke", 1); /* another life event */
  manual(&r, "gomi_annai", 0);       /* proposed: removed, still listed */
  manual(&r, "kaigo_tenshutsu", 0);  /* not proposed: nothing to remove */
  manual(&r, "tennyu_todoke", 1);    /* already proposed: stays auto */
  manual(&r, "nope", 1);             /* unknown: ignored */
  compute(&r);
  assert_string_equal(procs(&r), "tennyu_todoke,kokuho_kanyu,nenkin_1go,"
                                 "senkyo_annai,gomi_annai-,suido_annai,"
                                 "tenshutsu_todoke+");
  assert_int_equal(proc(&r, "tenshutsu_todoke")->source, MG_GUIDE_ADDED);
  assert_int_equal(proc(&r, "gomi_annai")->source, MG_GUIDE_REMOVED);
  assert_int_equal(proc(&r, "tennyu_todoke")->source, MG_GUIDE_AUTO);
  assert_null(proc(&r, "kaigo_tenshutsu"));

  /* the last decision for a procedure counts */
  manual(&r, "gomi_annai", 1);
  manual(&r, "tenshutsu_todoke", 0);
  compute(&r);
  assert_string_equal(procs(&r), "tennyu_todoke,kokuho_kanyu,nenkin_1go,"
                                 "senkyo_annai,gomi_annai,suido_annai");

  /* a procedure of this life event whose condition does not hold
   * (kaigo_shikaku for a 40-year-old) can be added; removing an auto one
   * that names age keeps who it was for */
  manual(&r, "kaigo_shikaku", 1);
  manual(&r, "nenkin_1go", 0);
  compute(&r);
  assert_int_equal(proc(&r, "kaigo_shikaku")->source, MG_GUIDE_ADDED);
  assert_int_equal(proc(&r, "nenkin_1go")->source, MG_GUIDE_REMOVED);
  assert_string_equal(who(&r, "nenkin_1go"), "1");
  assert_string_equal(reasons(&r, "nenkin_1go"),
                      "[{\"fact\":\"age\",\"value\":[40]},"
                      "{\"question\":\"tn_kousei\",\"answer\":"
                      "\"unanswered\"}]");
  /* the question ids are not decided by hand: progress is unchanged */
  assert_int_equal(r.st.total, 9);
  done(&r);
}

static void test_errors(void **state) {
  (void)state;
  struct run r;
  run_init(&r, shunan, "kekkon", FILING);
  assert_int_equal(mg_guide_compute(&r.in, &r.st), -ENOENT);
  assert_int_equal(r.st.n_qs, 0);
  assert_int_equal(r.st.n_procs, 0);
  mg_guide_state_free(&r.st);
  run_init(&r, shunan, "", FILING);
  assert_int_equal(mg_guide_compute(&r.in, &r.st), -ENOENT);
  mg_guide_state_free(&r.st);
  /* a question id is not a life event */
  run_init(&r, shunan, "tn_shien", FILING);
  assert_int_equal(mg_guide_compute(&r.in, &r.st), -ENOENT);
  mg_guide_state_free(&r.st);

  run_init(&r, shunan, "tennyu", FILING);
  for (int i = 0; i < MG_GUIDE_MAX_PEOPLE; i++)
    person(&r, D(1950 + i, 1, 1));
  assert_int_equal(mg_guide_compute(&r.in, &r.st), 0);
  /* ages 74 (1950) down to 43 (1981): kaigo_shikaku for 1950..1959 */
  assert_string_equal(who(&r, "kaigo_shikaku"),
                      "1111111111" "0000000000" "0000000000" "00");
  mg_guide_state_free(&r.st);
  person(&r, D(1990, 1, 1)); /* 33 */
  assert_int_equal(mg_guide_compute(&r.in, &r.st), -EINVAL);
  assert_int_equal(r.st.n_procs, 0);
  mg_guide_state_free(&r.st);
}

/* ---- reasons ---------------------------------------------------------- */

static void test_reasons_json(void **state) {
  (void)state;
  struct run r;

  /* kokuho_kanyu = age < 75 and not tn_shaho and not tn_seiho: the names
   * in the order they appear */
  run_init(&r, shunan, "tennyu", FILING);
  person(&r, D(1984, 1, 15));
  person(&r, D(1958, 3, 3));
  answer(&r, "tn_seiho", 0);
  answer(&r, "tn_shaho", 0);
  answer(&r, "tn_shien", 1);
  compute(&r);
  assert_string_equal(reasons(&r, "kokuho_kanyu"),
                      "[{\"fact\":\"age\",\"value\":[40,66]},"
                      "{\"question\":\"tn_shaho\",\"answer\":\"no\"},"
                      "{\"question\":\"tn_seiho\",\"answer\":\"no\"}]");
  /* senkyo_annai = age >= 18 and not foreign_resident */
  assert_string_equal(reasons(&r, "senkyo_annai"),
                      "[{\"fact\":\"age\",\"value\":[40,66]},"
                      "{\"fact\":\"foreign_resident\",\"value\":false}]");
  /* shien_soudan = tn_shien or tk_shien (tk_shien is of tenkyo) */
  assert_string_equal(reasons(&r, "shien_soudan"),
                      "[{\"question\":\"tn_shien\",\"answer\":\"yes\"},"
                      "{\"question\":\"tk_shien\",\"answer\":\"unanswered\"}]");
  /* no condition: no reasons */
  assert_string_equal(reasons(&r, "tennyu_todoke"), "[]");
  done(&r);

  /* shoumei, with a card: conveni_annai = has_mynumber_card and
   * (sm_juminhyo or sm_inkan or sm_koseki or sm_zei); inin_annai =
   * sm_dairi, asked as sm_juminhyo is yes */
  run_init(&r, shunan, "shoumei", FILING);
  r.in.has_mynumber_card = 1;
  answer(&r, "sm_juminhyo", 1);
  answer(&r, "sm_koseki", 0);
  answer(&r, "sm_dairi", 1);
  compute(&r);
  assert_string_equal(procs(&r), "juminhyo,inin_annai,conveni_annai");
  assert_string_equal(reasons(&r, "conveni_annai"),
                      "[{\"fact\":\"has_mynumber_card\",\"value\":true},"
                      "{\"question\":\"sm_juminhyo\",\"answer\":\"yes\"},"
                      "{\"question\":\"sm_inkan\",\"answer\":\"unanswered\"},"
                      "{\"question\":\"sm_koseki\",\"answer\":\"no\"},"
                      "{\"question\":\"sm_zei\",\"answer\":\"unanswered\"}]");
  assert_string_equal(reasons(&r, "inin_annai"),
                      "[{\"question\":\"sm_dairi\",\"answer\":\"yes\"}]");
  done(&r);

  /* mini: kokuho_kanyu = not kokuho_other and age < 75 */
  run_init(&r, mini, "tennyu", FILING);
  person(&r, D(1990, 7, 7)); /* 33 */
  person(&r, D(1940, 7, 7)); /* 83 */
  answer(&r, "kokuho_other", 0);
  compute(&r);
  assert_string_equal(who(&r, "kokuho_kanyu"), "10");
  assert_string_equal(reasons(&r, "kokuho_kanyu"),
                      "[{\"question\":\"kokuho_other\",\"answer\":\"no\"},"
                      "{\"fact\":\"age\",\"value\":[33]}]");
  done(&r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_questions_in_order_and_skipped),
      cmocka_unit_test(test_reanswer_changes_later_questions),
      cmocka_unit_test(test_progress),
      cmocka_unit_test(test_age_per_person),
      cmocka_unit_test(test_age_legal_boundary),
      cmocka_unit_test(test_children_under_18),
      cmocka_unit_test(test_school_and_preschool),
      cmocka_unit_test(test_no_people),
      cmocka_unit_test(test_manual),
      cmocka_unit_test(test_errors),
      cmocka_unit_test(test_reasons_json),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
