/* render_lock.c — see render_lock.h for why renders are serialised. */
#include "render_lock.h"

#include <pthread.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

void mg__render_lock(void) { pthread_mutex_lock(&lock); }

void mg__render_unlock(void) { pthread_mutex_unlock(&lock); }
