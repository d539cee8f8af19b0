/*
 * madoguchid — the per-floor counter daemon.
 *
 *   madoguchid --config /etc/madoguchi/madoguchid.conf
 *   madoguchid --demo DIR          built-in demo configuration, state in DIR
 *   madoguchid --check-config FILE check a file and exit (0 = good)
 *   madoguchid --config-doc        print the key reference (docs/config.md)
 */
#include <errno.h>
#include <getopt.h>
#include <ifaddrs.h>
#include <limits.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "address.h"
#include "auth.h"
#include "config.h"
#include "daemon.h"
#include "log.h"
#include "plugin_host.h"
#include "version.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: madoguchid --config FILE\n"
          "       madoguchid --demo DIR\n"
          "       madoguchid --check-config FILE\n"
          "       madoguchid --config-doc | --version | --help\n"
          "\n"
          "  --config FILE        run with this configuration (INI, see "
          "docs/config.md)\n"
          "  --demo DIR           run the built-in demo configuration with its "
          "state in DIR\n"
          "  --check-config FILE  check FILE, including device plugins' keys, "
          "and exit\n"
          "  --config-doc         print every configuration key as a Markdown "
          "table\n"
          "  --version            print the version\n");
}

static int dir_exists(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The demo runs from a build tree or an installed system alike. */
static const char *pick_dir(const char *installed, const char *build) {
  return dir_exists(installed) ? installed : build;
}

/* The first non-loopback IPv4 address, so the demo can print a URL that a
 * tablet on the LAN can open. */
static void lan_address(char *out, size_t len) {
  struct ifaddrs *ifa = NULL;
  snprintf(out, len, "localhost");
  if (getifaddrs(&ifa) != 0)
    return;
  for (struct ifaddrs *i = ifa; i; i = i->ifa_next) {
    if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET)
      continue;
    struct sockaddr_in *sin = (struct sockaddr_in *)i->ifa_addr;
    if ((ntohl(sin->sin_addr.s_addr) >> 24) == 127)
      continue;
    inet_ntop(AF_INET, &sin->sin_addr, out, (socklen_t)len);
    break;
  }
  freeifaddrs(ifa);
}

/* The demo's staff accounts (U1), so that a person can log in from the
 * browser: on the first start a random password is made, kept in
 * DIR/demo-login.txt (0600) and printed with the URL at every start; the
 * accounts `demo` (staff) and `demo-chief` (supervisor: unmasking, C2)
 * reach the box through [auth] users_file (DIR/demo-users.csv, hashes
 * only).  Not a fixed password written in the README: the demo listens on
 * every interface, and a published password would let anyone on the LAN
 * in.  password gets the password (out, NUL-terminated). */
static int demo_users(const char *dir, char *password, size_t plen,
                      struct mg_err *err) {
  char login[PATH_MAX + 32], users[PATH_MAX + 32], hash[MG_AUTH_HASH_MAX];
  FILE *f = NULL;
  int rc = 0;
  mode_t old = umask(077);
  snprintf(login, sizeof(login), "%s/demo-login.txt", dir);
  snprintf(users, sizeof(users), "%s/demo-users.csv", dir);
  password[0] = '\0';
  if ((f = fopen(login, "re"))) {
    if (fgets(password, (int)plen, f))
      password[strcspn(password, "\r\n")] = '\0';
    fclose(f);
    f = NULL;
    if (password[0] && access(users, R_OK) == 0)
      goto out;
  }
  if (plen < 17 || mg_auth_random_b64url(12, password) != 0 ||
      mg_auth_hash_password(password, hash) != 0) {
    rc = mg_err_set(err, -EIO, "%s: cannot make the demo password", dir);
    goto out;
  }
  if (!(f = fopen(users, "we")) ||
      fprintf(f, "id,name,role,password_hash\n"
                 "demo,デモ職員,staff,%s\n"
                 "demo-chief,デモ係長,supervisor,%s\n",
              hash, hash) < 0 ||
      fclose(f) != 0) {
    f = NULL;
    rc = mg_err_set(err, -EIO, "%s: cannot write: %s", users, strerror(errno));
    goto out;
  }
  if (!(f = fopen(login, "we")) || fprintf(f, "%s\n", password) < 0 ||
      fclose(f) != 0) {
    f = NULL;
    rc = mg_err_set(err, -EIO, "%s: cannot write: %s", login, strerror(errno));
    goto out;
  }
  f = NULL;
out:
  umask(old);
  return rc;
}

static int demo_config(const char *dir_arg, struct mg_config **out,
                       struct mg_err *err) {
  char dir[PATH_MAX], text[16384];
  if (mkdir(dir_arg, 0750) != 0 && errno != EEXIST)
    return mg_err_set(err, -errno, "%s: %s", dir_arg, strerror(errno));
  if (!realpath(dir_arg, dir))
    return mg_err_set(err, -errno, "%s: %s", dir_arg, strerror(errno));
  char prints[PATH_MAX + 16], signers[PATH_MAX + 32], pack[2 * PATH_MAX + 128];
  char linkage[PATH_MAX + 16];
  snprintf(prints, sizeof(prints), "%s/prints", dir);
  mkdir(prints, 0750);
  snprintf(linkage, sizeof(linkage), "%s/linkage", dir); /* X4 CSV files */
  mkdir(linkage, 0750);
  /* scripts/demo-pack publishes the demo pack as a signed repository */
  snprintf(signers, sizeof(signers), "%s/allowed_signers", dir);
  pack[0] = '\0';
  if (access(signers, R_OK) == 0)
    snprintf(pack, sizeof(pack),
             "[pack]\nurl = file://%s/pack-repo\nallowed_signers = %s\n", dir,
             signers);
  int n = snprintf(text, sizeof(text),
                   "; built-in demo configuration (madoguchid --demo)\n"
                   "[daemon]\n"
                   "state_dir = %s/state\n"
                   "runtime_dir = %s/run\n"
                   "plugin_dir = %s\n"
                   "web_dir = %s\n"
                   "[http]\n"
                   "listen = 0.0.0.0:8443\n"
                   "[auth]\n"
                   "require_tablet = no  ; a demo tablet names its counter\n"
                   "users_file = %s/demo-users.csv\n"
                   "[printer \"demo\"]\n"
                   "plugin = fileprinter\n"
                   "counters = shimin-1, shimin-2\n"
                   "dir = %s\n"
                   "[exporter \"linkage\"]\n"
                   "plugin = csvexport\n"
                   "dir = %s\n"
                   "%s",
                   dir, dir, pick_dir(MG_DEFAULT_PLUGIN_DIR, MG_BUILD_PLUGIN_DIR),
                   pick_dir(MG_DEFAULT_WEB_DIR, MG_SOURCE_WEB_DIR), dir, prints,
                   linkage, pack);
  if (n < 0 || n >= (int)sizeof(text))
    return mg_err_set(err, -ENAMETOOLONG, "%s: path too long", dir);
  return mg_config_parse(text, (size_t)n, "(demo)", out, err);
}

/* The demo's address dictionary (I1): on its first start, the national
 * data that the build converted (<build>/data/utf_ken_all.csv, target
 * mg_address_data).  An installed demo without it runs without one. */
static void demo_address(const struct mg_config *cfg) {
  struct stat st;
  struct mg_err err = {{0}};
  size_t rows = 0;
  if (stat(cfg->address_file, &st) == 0 || stat(MG_BUILD_ADDRESS_CSV, &st) != 0)
    return;
  if (mkdir(cfg->state_dir, 0750) != 0 && errno != EEXIST)
    return; /* the daemon reports it */
  printf("Importing the national address dictionary (first start only)...\n");
  fflush(stdout);
  if (mg_addr_import(MG_BUILD_ADDRESS_CSV, cfg->address_file, &rows, &err))
    fprintf(stderr, "madoguchid: demo address dictionary: %s\n", err.msg);
  else
    printf("%zu addresses imported from %s\n", rows, MG_BUILD_ADDRESS_CSV);
}

/* Load plugins too, so that a device section's keys are checked by the
 * plugin's own table.  Shared by --check-config; madoctl does the same. */
static int check_config(const char *path) {
  struct mg_config *cfg = NULL;
  struct mg_plugin_host *h = NULL;
  struct mg_err err = {{0}};
  int rc = mg_config_load(path, &cfg, &err);
  if (!rc && !(rc = mg_plugin_host_create(NULL, cfg->plugin_dir, NULL, NULL, &h)))
    rc = mg_plugin_host_configure(h, cfg, &err);
  if (rc)
    fprintf(stderr, "madoguchid: %s\n", err.msg[0] ? err.msg : strerror(-rc));
  else
    printf("%s: OK (%zu device section(s))\n", path, cfg->n_devices);
  mg_plugin_host_destroy(h);
  mg_config_free(cfg);
  return rc ? 1 : 0;
}

int main(int argc, char **argv) {
  static const struct option opts[] = {
      {"config", required_argument, NULL, 'c'},
      {"demo", required_argument, NULL, 'd'},
      {"check-config", required_argument, NULL, 'k'},
      {"config-doc", no_argument, NULL, 'D'},
      {"version", no_argument, NULL, 'V'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  uint64_t start_ns = uv_hrtime();
  const char *config = NULL, *demo = NULL;
  struct mg_config *cfg = NULL;
  struct mg_err err = {{0}};
  int c;

  mg_log_init();
  while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
    switch (c) {
    case 'c': config = optarg; break;
    case 'd': demo = optarg; break;
    case 'k': return check_config(optarg);
    case 'D': {
      struct mg_buf b;
      mg_buf_init(&b);
      mg_config_doc(&b);
      fputs(b.data ? b.data : "", stdout);
      mg_buf_free(&b);
      return 0;
    }
    case 'V': printf("madoguchid %s\n", MG_VERSION); return 0;
    case 'h': usage(stdout); return 0;
    default: usage(stderr); return 2;
    }
  }
  if (optind < argc || (!config == !demo)) {
    usage(stderr);
    return 2;
  }
  if (demo) {
    if (demo_config(demo, &cfg, &err)) {
      fprintf(stderr, "madoguchid: %s\n", err.msg);
      return 1;
    }
    demo_address(cfg);
    char ip[64], pw[64];
    if (demo_users(demo, pw, sizeof(pw), &err)) {
      fprintf(stderr, "madoguchid: %s\n", err.msg);
      mg_config_free(cfg);
      return 1;
    }
    lan_address(ip, sizeof(ip));
    printf("Madoguchi demo: open https://%s:8443/ (or https://localhost:8443/)\n"
           "Log in as demo (staff) or demo-chief (supervisor), password %s,\n"
           "counter e.g. shimin-1 (the password is kept in %s/demo-login.txt).\n"
           "State in %s; stop with Ctrl-C.\n", ip, pw, demo, demo);
    fflush(stdout);
  } else if (mg_config_load(config, &cfg, &err)) {
    fprintf(stderr, "madoguchid: %s\n", err.msg);
    return 1;
  }
  return mg_daemon_run(cfg, config, start_ns);
}
