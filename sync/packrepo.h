/*
 * packrepo.h — procedure packs from git: fetch into a local bare cache,
 * fast-forward only, the tip commit signed by an allowed signer, checked
 * out into a new release folder, validated, fsynced, and switched in with
 * an atomic symlink rename.  Earlier releases are kept for rollback.  Any
 * failure leaves the active release untouched and says why.
 *
 * Layout under `dir` (state_dir/packs):
 *   cache.git/               bare repository the remote is fetched into
 *   releases/<commit>/       one checked-out tree per activated commit
 *   releases/<commit>.json   {commit, signer, fingerprint, activated_at, seq}
 *                            (seq orders releases: the clock may jump)
 *   current -> releases/<commit>   the active release (symlink)
 *   state.json               rollback pin (a commit not to re-activate)
 *
 * ssh:// fetches offer only `ssh_key` (no agent), once, and accept the
 * server when its host key matches `ssh_host_key` (libgit2 1.5.1 reads no
 * known_hosts); without a pin any host key is accepted and the signature
 * check (and fast-forward only) is what protects the box.  `active` and `changed` may be NULL.
 *
 * Blocking (network, disk): call from a worker thread, never the loop.
 * Functions are safe to call from one thread at a time per `dir`.
 */
#ifndef MG_PACKREPO_H
#define MG_PACKREPO_H

#include <stddef.h>
#include <time.h>

#include "err.h"
#include "sshsig.h"

struct mg_pack_release {
  char commit[41];       /* hex object id */
  char signer[256];      /* allowed_signers principal */
  char fingerprint[64];  /* SHA256:... */
  time_t activated_at;   /* 0 for a release never activated */
};

/* Checks a checked-out tree before it may become active (the pack
 * validator); 0 to accept, or a negative errno with err saying why. */
typedef int (*mg_pack_validate_fn)(void *ud, const char *tree_dir,
                                   struct mg_err *err);

struct mg_packrepo_opts {
  const char *dir;        /* state_dir/packs (created when absent) */
  const char *url;        /* file://, https://, ssh:// or a local path */
  const char *branch;     /* e.g. "main" */
  const struct mg_signers *signers;
  int keep_releases;      /* releases kept besides the active one (>= 1) */
  mg_pack_validate_fn validate; /* may be NULL (tests) */
  void *validate_ud;
  /* Commits not to prune, NULL-terminated (may be NULL): releases that
   * visits in progress still use keep their files. */
  const char *const *in_use;
  /* Private key offered to ssh:// servers (a read-only deploy key), or
   * NULL.  Appended last: callers that zero the struct are unaffected. */
  const char *ssh_key;
  /* "SHA256:..." host key fingerprint the ssh server must show (as
   * ssh-keygen -lf prints it), or NULL to accept any. */
  const char *ssh_host_key;
  /* PEM file of CA certificates trusted for an https:// url besides the
   * system's (a city's private CA), or NULL. */
  const char *ca_file;
};

/* Fetch and, when the tip is new, fast-forward, signed and valid, make it
 * active.  *changed is 1 when a new release became active, 0 when the tip
 * was already active (or pinned by a rollback).  On success *active holds
 * the active release.  Errors (-ENOENT, -EKEYREJECTED, -EBADE, -ESTALE for
 * not fast-forward, -EINVAL for an invalid pack, -EIO, ...) leave the
 * active release as it was. */
int mg_packrepo_pull(const struct mg_packrepo_opts *o,
                     struct mg_pack_release *active, int *changed,
                     struct mg_err *err);

/* The active release (-ENOENT when none) and the kept ones, newest first;
 * *prev (malloc'd, may be NULL) must be freed by the caller. */
int mg_packrepo_status(const char *dir, struct mg_pack_release *active,
                       struct mg_pack_release **prev, size_t *n_prev,
                       struct mg_err *err);

/* Make the previous kept release active again, and pin the newest release
 * rolled back from (a second rollback keeps the first pin) so that the next
 * pull does not re-activate it or anything up to it; a newer signed commit
 * does, and clears the pin.  -ENOENT when there is nothing to go back to. */
int mg_packrepo_rollback(const char *dir, struct mg_pack_release *active,
                         struct mg_err *err);

/* Path of the active release's tree into buf ("dir/current" resolved). */
int mg_packrepo_current_dir(const char *dir, char *buf, size_t len);

#endif
