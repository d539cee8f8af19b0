/*
 * test_form.c — field rules (core/form.h) over the demo pack's real forms:
 * normalisation, types, date rules against the filing date (F5), check
 * digits (I6), choices and hierarchical lists (F6), the printable length
 * (FG3), computed fields (F3, F7), and that a refused value is kept as
 * typed.  Filing date 2026-04-10 unless said.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "form.h"
#include "pack.h"

#define SHUNAN MG_TEST_SOURCE_DIR "/packs/shunan"

static struct mg_pack *pk;
static const struct mg_date FILING = {2026, 4, 10};

static const struct mg_pack_field *F(const char *form, const char *id) {
  const struct mg_pack_form *f = mg_pack_form(pk, form);
  for (size_t i = 0; f && i < f->n_fields; i++)
    if (strcmp(f->fields[i].id, id) == 0)
      return &f->fields[i];
  fail_msg("no field %s.%s in the demo pack", form, id);
  return NULL;
}

/* Check one value: expect rc; *out the stored value; err in msg. */
static int chk(const char *form, const char *field, const char *raw,
               const char *parent, char out[512], char msg[512]) {
  char *norm = NULL;
  struct mg_err e = {{0}};
  int rc = mg_form_check(pk, F(form, field), raw, parent, &FILING, &norm, &e);
  snprintf(out, 512, "%s", norm ? norm : "(null)");
  snprintf(msg, 512, "%s", e.msg);
  free(norm);
  return rc;
}

static int setup(void **state) {
  struct mg_pack_report rep;
  (void)state;
  mg_pack_report_init(&rep);
  int rc = mg_pack_load(SHUNAN, &pk, &rep);
  if (rc)
    mg_pack_report_print(&rep, stderr);
  mg_pack_report_free(&rep);
  return rc;
}

static int teardown(void **state) {
  (void)state;
  mg_pack_free(pk);
  return 0;
}

static void dates_both_eras_and_rules(void **state) {
  char v[512], m[512];
  (void)state;
  assert_int_equal(chk("jumin_idou", "move_date", "令和8年4月1日", NULL, v, m), 0);
  assert_string_equal(v, "2026-04-01");
  assert_int_equal(chk("jumin_idou", "move_date", " R8.4.10 ", NULL, v, m), 0);
  assert_string_equal(v, "2026-04-10");
  assert_int_equal(chk("jumin_idou", "move_date", "２０２６／０４／０９", NULL, v, m), 0);
  assert_string_equal(v, "2026-04-09");
  /* F5: "<= filing": the day after is refused, naming the field */
  assert_int_equal(chk("jumin_idou", "move_date", "2026-04-11", NULL, v, m),
                   -EINVAL);
  assert_non_null(strstr(m, "異動日"));
  assert_non_null(strstr(m, "より後の日付は入力できません"));
  assert_string_equal(v, "2026-04-11"); /* kept as typed */
  /* 2月30日 and 令和0年 */
  assert_int_equal(chk("jumin_idou", "move_date", "令和8年2月30日", NULL, v, m),
                   -EINVAL);
  assert_non_null(strstr(m, "2月30日"));
  assert_string_equal(v, "令和8年2月30日");
  assert_int_equal(chk("jumin_idou", "move_date", "令和0年4月1日", NULL, v, m),
                   -EINVAL);
  assert_non_null(strstr(m, "令和0年"));
  /* ">= filing - 14d" (tennyugaku.tennyu_date): 15 days before fails */
  assert_int_equal(chk("tennyugaku", "tennyu_date", "2026-03-27", NULL, v, m),
                   0);
  assert_int_equal(chk("tennyugaku", "tennyu_date", "2026-03-26", NULL, v, m),
                   -EINVAL);
  assert_non_null(strstr(m, "令和8年3月27日より前"));
  /* empty is valid here: required is the form's question */
  assert_int_equal(chk("jumin_idou", "move_date", "　", NULL, v, m), 0);
  assert_string_equal(v, "");
}

static void check_digits_and_numbers(void **state) {
  char v[512], m[512];
  (void)state;
  /* 12345678901 + its check digit 8 (reference formula) */
  assert_int_equal(chk("jidouteate", "mynumber", "1234 5678 9018", NULL, v, m), 0);
  assert_string_equal(v, "123456789018");
  assert_int_equal(chk("jidouteate", "mynumber", "123456789012", NULL, v, m),
                   -EINVAL);
  assert_non_null(strstr(m, "検査用数字"));
  assert_int_equal(chk("jidouteate", "mynumber", "12345", NULL, v, m), -EINVAL);
  assert_non_null(strstr(m, "12桁"));
  assert_int_equal(chk("jumin_idou", "resident_code", "12345678903", NULL, v, m), 0);
  assert_int_equal(chk("jumin_idou", "resident_code", "12345678904", NULL, v, m),
                   -EINVAL);
  assert_int_equal(chk("jumin_idou", "new_postal_code", "７４５－０００４", NULL, v, m), 0);
  assert_string_equal(v, "7450004");
  assert_int_equal(chk("jumin_idou", "new_postal_code", "74500", NULL, v, m),
                   -EINVAL);
  assert_int_equal(chk("jumin_idou", "phone", "0834-22-8211", NULL, v, m), 0);
  assert_int_equal(chk("jumin_idou", "phone", "0834-22", NULL, v, m), -EINVAL);
  assert_int_equal(chk("jidouteate", "kouza", "１２３４５６７", NULL, v, m), 0);
  assert_string_equal(v, "1234567");
  assert_int_equal(chk("jidouteate", "kouza", "12a", NULL, v, m), -EINVAL);
}

static void names_kana_lengths(void **state) {
  char v[512], m[512];
  (void)state;
  assert_int_equal(chk("jumin_idou", "name", "  山田   太郎 ", NULL, v, m), 0);
  assert_string_equal(v, "山田\u3000太郎");
  char half[64];
  mg_form_name_half(v, 0, half, sizeof(half));
  assert_string_equal(half, "山田");
  mg_form_name_half(v, 1, half, sizeof(half));
  assert_string_equal(half, "太郎");
  mg_form_name_half("山田", 1, half, sizeof(half));
  assert_string_equal(half, "");
  assert_int_equal(chk("jumin_idou", "kana", "やまだ ﾀﾛｳ", NULL, v, m), 0);
  assert_string_equal(v, "ヤマダ\u3000タロウ");
  assert_int_equal(chk("jumin_idou", "kana", "山田", NULL, v, m), -EINVAL);
  assert_non_null(strstr(m, "カタカナ"));
  /* FG3: 20 characters for the split name (the separator does not count) */
  assert_int_equal(chk("jumin_idou", "name",
                       "一二三四五六七八九十 一二三四五六七八九十", NULL, v, m), 0);
  assert_int_equal(chk("jumin_idou", "name",
                       "一二三四五六七八九十 一二三四五六七八九十一", NULL, v, m),
                   -EINVAL);
  assert_non_null(strstr(m, "20文字以内"));
  /* control characters: refused, kept */
  assert_int_equal(chk("jumin_idou", "prev_head", "山田\x01", NULL, v, m),
                   -EINVAL);
  /* beyond 4000 bytes: not kept at all */
  char *big = malloc(5000);
  memset(big, 'a', 4999);
  big[4999] = 0;
  char *norm = (char *)1;
  struct mg_err e = {{0}};
  assert_int_equal(mg_form_check(pk, F("jumin_idou", "prev_head"), big, NULL,
                                 &FILING, &norm, &e),
                   -E2BIG);
  assert_null(norm);
  free(big);
}

static void choices_and_hierarchy(void **state) {
  char v[512], m[512];
  (void)state;
  const struct mg_pack_choice_list *l = mg_pack_choices(pk, "seibetsu");
  assert_non_null(l);
  assert_int_equal(chk("jumin_idou", "m_sex", l->v[0].value, NULL, v, m), 0);
  /* a label typed maps to its value */
  assert_int_equal(chk("jumin_idou", "m_sex", l->v[1].label, NULL, v, m), 0);
  assert_string_equal(v, l->v[1].value);
  assert_string_equal(mg_form_choice_label(pk, F("jumin_idou", "m_sex"), v),
                      l->v[1].label);
  assert_int_equal(chk("jumin_idou", "m_sex", "no-such", NULL, v, m), -EINVAL);
  assert_non_null(strstr(m, "選択肢にない"));
  /* F6: 小学校 under its 中学校区 */
  assert_int_equal(chk("tennyugaku", "shogakko", "tokuyama", "giyo", v, m), 0);
  assert_int_equal(chk("tennyugaku", "shogakko", "tokuyama", "other", v, m),
                   -EINVAL);
  assert_non_null(strstr(m, "属さない"));
  assert_int_equal(chk("jumin_idou", "proxy", "はい", NULL, v, m), 0);
  assert_string_equal(v, "yes");
  assert_int_equal(chk("jumin_idou", "proxy", "maybe", NULL, v, m), -EINVAL);
}

static void computed(void **state) {
  char buf[64];
  (void)state;
  /* age by the legal rule: a year is reached the day before the birthday,
   * so on 2026-04-10 one born 1960-04-11 is 66 and one born 04-12 is 65 */
  mg_form_compute(pk, F("jidouteate", "age"), "1960-04-11", NULL, &FILING, buf,
                  sizeof(buf));
  assert_string_equal(buf, "66");
  mg_form_compute(pk, F("jidouteate", "age"), "1960-04-12", NULL, &FILING, buf,
                  sizeof(buf));
  assert_string_equal(buf, "65");
  mg_form_compute(pk, F("tennyugaku", "s_grade"), "2019-04-02", NULL, &FILING,
                  buf, sizeof(buf));
  assert_string_equal(buf, "小1");
  mg_form_compute(pk, F("tennyugaku", "s_grade"), "2019-04-01", NULL, &FILING,
                  buf, sizeof(buf));
  assert_string_equal(buf, "小2");
  mg_form_compute(pk, F("tennyugaku", "s_grade"), "2023-01-01", NULL, &FILING,
                  buf, sizeof(buf));
  assert_string_equal(buf, "未就学");
  /* F3: districts.csv by postal code and town */
  mg_form_compute(pk, F("jumin_idou", "district"), "山口県周南市毛利町1-1",
                  "7450004", &FILING, buf, sizeof(buf));
  assert_string_equal(buf, "中央");
  mg_form_compute(pk, F("jumin_idou", "district"), "東京都千代田区架空町1-1",
                  "1000001", &FILING, buf, sizeof(buf));
  assert_string_equal(buf, "");
  mg_form_compute(pk, F("jumin_idou", "district"), "", "", &FILING, buf,
                  sizeof(buf));
  assert_string_equal(buf, "");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(dates_both_eras_and_rules),
      cmocka_unit_test(check_digits_and_numbers),
      cmocka_unit_test(names_kana_lengths),
      cmocka_unit_test(choices_and_hierarchy),
      cmocka_unit_test(computed),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
