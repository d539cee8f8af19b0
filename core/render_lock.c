/* render_lock.c — see render_lock.h for why renders are serialised.
 *
 * A ticket lock: waiters get the lock in the order they asked, so a long
 * render that yields between sheets really lets a waiting field check
 * (on the event loop) in; a plain mutex would usually hand it straight
 * back to the render. */
#include "render_lock.h"

#include <pthread.h>

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t turn = PTHREAD_COND_INITIALIZER;
static unsigned long next_ticket, serving;

void mg__render_lock(void) {
  pthread_mutex_lock(&mu);
  unsigned long me = next_ticket++;
  while (me != serving)
    pthread_cond_wait(&turn, &mu);
  pthread_mutex_unlock(&mu);
}

void mg__render_unlock(void) {
  pthread_mutex_lock(&mu);
  serving++;
  pthread_cond_broadcast(&turn);
  pthread_mutex_unlock(&mu);
}

void mg__render_yield(void) {
  mg__render_unlock();
  mg__render_lock();
}
