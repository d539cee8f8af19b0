/*
 * test_http.c — the HTTP server's graceful stop with answers that come
 * later (a handler whose work runs on a worker thread, as PDF rendering
 * will): a request in flight at stop is finished when it fits in
 * drain_timeout, and one that does not is cut without touching freed
 * memory (run under ASan in CI).  The client is curl, run as a process.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include <cmocka.h>

#include "config.h"
#include "http.h"
#include "log.h"
#include "tls.h"

struct slow {
  uv_work_t req;
  struct mg_http_txn *t;
  unsigned delay_ms;
};

struct run {
  uv_loop_t loop;
  struct mg_http *http;
  uv_timer_t stop_timer;
  uv_timer_t guard; /* stops everything if the request never comes */
  pid_t curl;
  char out[256];
};

static unsigned handler_delay_ms;
static int answered;

static void slow_work(uv_work_t *req) {
  struct slow *s = req->data;
  usleep(s->delay_ms * 1000u);
}

static void slow_done(uv_work_t *req, int status) {
  struct slow *s = req->data;
  (void)status;
  mg_http_reply_json(s->t, 200, "{\"slow\":true}");
  answered++;
  free(s);
}

static void stop_now(uv_timer_t *t);

/* Work on a worker thread, and stop the server while it runs. */
static void slow_handler(void *ud, struct mg_http_txn *t,
                         const struct mg_http_req *req) {
  struct run *r = ud;
  uv_loop_t *loop = &r->loop;
  (void)req;
  struct slow *s = calloc(1, sizeof(*s));
  assert_non_null(s);
  s->t = t;
  s->delay_ms = handler_delay_ms;
  s->req.data = s;
  assert_int_equal(uv_queue_work(loop, &s->req, slow_work, slow_done), 0);
  uv_timer_start(&r->stop_timer, stop_now, 100, 0);
  uv_close((uv_handle_t *)&r->guard, NULL);
}

static void stop_now(uv_timer_t *t) {
  struct run *r = t->data;
  uv_close((uv_handle_t *)t, NULL);
  if (t == &r->guard) /* the request never came: close the other timer */
    uv_close((uv_handle_t *)&r->stop_timer, NULL);
  mg_http_stop(r->http, NULL, NULL);
}

/* Start a server, request /api/v1/slow with curl, stop the server while
 * the handler works; return curl's exit status and its output in r->out. */
static int run_case(unsigned delay_ms, const char *drain) {
  char dir[] = "/tmp/mg-test-http-XXXXXX", text[1024], cert[300], key[300];
  struct mg_config *cfg = NULL;
  struct mg_err err = {{0}};
  struct run r;
  int st = -1;

  memset(&r, 0, sizeof(r));
  assert_non_null(mkdtemp(dir));
  snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
  snprintf(key, sizeof(key), "%s/key.pem", dir);
  snprintf(text, sizeof(text),
           "[daemon]\nstate_dir = %s\nweb_dir = %s\n[http]\nlisten = "
           "127.0.0.1:0\ndrain_timeout = %s\n[tls]\ncert = %s\nkey = %s\n",
           dir, dir, drain, cert, key);
  assert_int_equal(mg_config_parse(text, strlen(text), "t.conf", &cfg, &err), 0);
  assert_int_equal(mg_tls_ensure(cert, key, "127.0.0.1", NULL, 0, &err), 0);
  assert_int_equal(uv_loop_init(&r.loop), 0);
  assert_int_equal(mg_http_start(&r.loop, cfg, &r.http, &err), 0);
  assert_int_equal(mg_http_route(r.http, "GET", "/api/v1/slow", slow_handler, &r), 0);
  handler_delay_ms = delay_ms;
  answered = 0;

  char url[128], outpath[300];
  snprintf(url, sizeof(url), "https://127.0.0.1:%d/api/v1/slow", mg_http_port(r.http));
  snprintf(outpath, sizeof(outpath), "%s/out", dir);
  r.curl = fork();
  if (r.curl == 0) {
    execlp("curl", "curl", "-sk", "-m", "10", "-o", outpath, url, (char *)NULL);
    _exit(127);
  }
  /* The handler starts the stop timer once the request is in. */
  uv_timer_init(&r.loop, &r.stop_timer);
  r.stop_timer.data = &r;
  uv_timer_init(&r.loop, &r.guard);
  r.guard.data = &r;
  uv_timer_start(&r.guard, stop_now, 15000, 0);
  uv_run(&r.loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&r.loop), 0);
  mg_http_free(r.http);
  assert_int_equal(waitpid(r.curl, &st, 0), r.curl);
  FILE *f = fopen(outpath, "r");
  if (f) {
    size_t n = fread(r.out, 1, sizeof(r.out) - 1, f);
    r.out[n] = '\0';
    fclose(f);
  }
  mg_config_free(cfg);
  snprintf(text, sizeof(text), "rm -rf '%s'", dir);
  assert_int_equal(system(text), 0);
  assert_int_equal(answered, 1); /* the handler always got to answer */
  if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
    return strcmp(r.out, "{\"slow\":true}") == 0 ? 0 : 1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static void test_inflight_finishes_within_drain(void **state) {
  (void)state;
  /* handler needs 1 s, stop comes 0.1 s into it, drain allows 5 s */
  assert_int_equal(run_case(1000, "5s"), 0);
}

static void test_inflight_cut_after_drain(void **state) {
  (void)state;
  /* handler needs 2 s, drain allows 0.2 s: the client sees the connection
   * end; the late answer lands on a detached transaction. */
  assert_int_not_equal(run_case(2000, "200ms"), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_inflight_finishes_within_drain),
      cmocka_unit_test(test_inflight_cut_after_drain),
  };
  signal(SIGPIPE, SIG_IGN);
  mg_log_set_level(getenv("MG_LWS_DEBUG") ? MG_LOG_DEBUG : MG_LOG_ERR);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
