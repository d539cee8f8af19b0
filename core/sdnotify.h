/*
 * sdnotify.h — the systemd notify protocol (sd_notify(3)), spoken directly:
 * one datagram to $NOTIFY_SOCKET.  No-op when not run by systemd.
 */
#ifndef MG_SDNOTIFY_H
#define MG_SDNOTIFY_H

#include <stdint.h>

/* Send e.g. "READY=1\nSTATUS=serving".  0, or a negative errno. */
int mg_sd_notify(const char *state);
/* The watchdog interval systemd asked for ($WATCHDOG_USEC for our pid),
 * in microseconds; 0 when none. */
uint64_t mg_sd_watchdog_usec(void);

#endif
