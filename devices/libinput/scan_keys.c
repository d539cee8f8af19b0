/*
 * scan_keys.c — a slip scanner's keystrokes back into text, and what the
 * text is (G5).  See scan_keys.h.
 */
#include "scan_keys.h"

#include <linux/input-event-codes.h>
#include <string.h>

/* Modifier keys held, one bit each. */
#define M_LSHIFT 0x01u
#define M_RSHIFT 0x02u
#define M_LCTRL 0x04u
#define M_RCTRL 0x08u
#define M_LALT 0x10u
#define M_RALT 0x20u
#define M_LMETA 0x40u
#define M_RMETA 0x80u
#define M_SHIFT (M_LSHIFT | M_RSHIFT)
#define M_CHORD (M_LCTRL | M_RCTRL | M_LALT | M_RALT | M_LMETA | M_RMETA)

#define N_KEYS 128 /* every key that types a character is below KEY_YEN + 4 */

/* Unshifted and shifted character of each key; {0, 0}: no character.
 * Letters are here in lower case; shift and Caps Lock decide the case. */
static const char us_keys[N_KEYS][2] = {
    [KEY_1] = {'1', '!'},          [KEY_2] = {'2', '@'},
    [KEY_3] = {'3', '#'},          [KEY_4] = {'4', '$'},
    [KEY_5] = {'5', '%'},          [KEY_6] = {'6', '^'},
    [KEY_7] = {'7', '&'},          [KEY_8] = {'8', '*'},
    [KEY_9] = {'9', '('},          [KEY_0] = {'0', ')'},
    [KEY_MINUS] = {'-', '_'},      [KEY_EQUAL] = {'=', '+'},
    [KEY_LEFTBRACE] = {'[', '{'},  [KEY_RIGHTBRACE] = {']', '}'},
    [KEY_SEMICOLON] = {';', ':'},  [KEY_APOSTROPHE] = {'\'', '"'},
    [KEY_GRAVE] = {'`', '~'},      [KEY_BACKSLASH] = {'\\', '|'},
    [KEY_COMMA] = {',', '<'},      [KEY_DOT] = {'.', '>'},
    [KEY_SLASH] = {'/', '?'},      [KEY_SPACE] = {' ', ' '},
    [KEY_Q] = {'q', 'q'}, [KEY_W] = {'w', 'w'}, [KEY_E] = {'e', 'e'},
    [KEY_R] = {'r', 'r'}, [KEY_T] = {'t', 't'}, [KEY_Y] = {'y', 'y'},
    [KEY_U] = {'u', 'u'}, [KEY_I] = {'i', 'i'}, [KEY_O] = {'o', 'o'},
    [KEY_P] = {'p', 'p'}, [KEY_A] = {'a', 'a'}, [KEY_S] = {'s', 's'},
    [KEY_D] = {'d', 'd'}, [KEY_F] = {'f', 'f'}, [KEY_G] = {'g', 'g'},
    [KEY_H] = {'h', 'h'}, [KEY_J] = {'j', 'j'}, [KEY_K] = {'k', 'k'},
    [KEY_L] = {'l', 'l'}, [KEY_Z] = {'z', 'z'}, [KEY_X] = {'x', 'x'},
    [KEY_C] = {'c', 'c'}, [KEY_V] = {'v', 'v'}, [KEY_B] = {'b', 'b'},
    [KEY_N] = {'n', 'n'}, [KEY_M] = {'m', 'm'},
    /* the keypad: scanners set to "keypad digits" type these (Num Lock on) */
    [KEY_KP0] = {'0', '0'}, [KEY_KP1] = {'1', '1'}, [KEY_KP2] = {'2', '2'},
    [KEY_KP3] = {'3', '3'}, [KEY_KP4] = {'4', '4'}, [KEY_KP5] = {'5', '5'},
    [KEY_KP6] = {'6', '6'}, [KEY_KP7] = {'7', '7'}, [KEY_KP8] = {'8', '8'},
    [KEY_KP9] = {'9', '9'}, [KEY_KPMINUS] = {'-', '-'},
    [KEY_KPPLUS] = {'+', '+'}, [KEY_KPASTERISK] = {'*', '*'},
    [KEY_KPSLASH] = {'/', '/'}, [KEY_KPDOT] = {'.', '.'},
};

/* Keys whose characters differ on the Japanese JIS layout (xkb "jp"). */
static const struct {
  unsigned short code;
  char c[2];
} jp_diff[] = {
    {KEY_2, {'2', '"'}},           {KEY_6, {'6', '&'}},
    {KEY_7, {'7', '\''}},          {KEY_8, {'8', '('}},
    {KEY_9, {'9', ')'}},           {KEY_0, {'0', 0}},
    {KEY_MINUS, {'-', '='}},       {KEY_EQUAL, {'^', '~'}},
    {KEY_LEFTBRACE, {'@', '`'}},   {KEY_RIGHTBRACE, {'[', '{'}},
    {KEY_SEMICOLON, {';', '+'}},   {KEY_APOSTROPHE, {':', '*'}},
    {KEY_GRAVE, {0, 0}}, /* 半角/全角 */
    {KEY_BACKSLASH, {']', '}'}},   {KEY_RO, {'\\', '_'}},
    {KEY_YEN, {'\\', '|'}},
};

static char key_char(int layout, uint32_t code, int shift, int caps) {
  char c[2] = {0, 0};
  if (code >= N_KEYS)
    return 0;
  memcpy(c, us_keys[code], 2);
  if (layout == SCAN_LAYOUT_JP) {
    for (size_t i = 0; i < sizeof(jp_diff) / sizeof(jp_diff[0]); i++)
      if (jp_diff[i].code == code)
        memcpy(c, jp_diff[i].c, 2);
  } else if (code == KEY_RO || code == KEY_YEN) {
    return 0; /* no such key on a US keyboard */
  }
  if (c[0] >= 'a' && c[0] <= 'z')
    return (shift != caps) ? (char)(c[0] - 'a' + 'A') : c[0];
  return c[shift ? 1 : 0];
}

static unsigned mod_bit(uint32_t code) {
  switch (code) {
  case KEY_LEFTSHIFT: return M_LSHIFT;
  case KEY_RIGHTSHIFT: return M_RSHIFT;
  case KEY_LEFTCTRL: return M_LCTRL;
  case KEY_RIGHTCTRL: return M_RCTRL;
  case KEY_LEFTALT: return M_LALT;
  case KEY_RIGHTALT: return M_RALT;
  case KEY_LEFTMETA: return M_LMETA;
  case KEY_RIGHTMETA: return M_RMETA;
  default: return 0;
  }
}

static void line_clear(struct scan_keys *k) {
  k->n = 0;
  k->bad = 0;
  k->started = 0;
  k->line[0] = '\0';
}

void scan_keys_init(struct scan_keys *k, int layout, uint64_t gap_ms) {
  memset(k, 0, sizeof(*k));
  k->layout = layout;
  k->gap_ms = gap_ms;
}

void scan_keys_reset(struct scan_keys *k) {
  k->mods = 0;
  k->caps = 0;
  line_clear(k);
}

int scan_keys_feed(struct scan_keys *k, uint32_t code, int pressed,
                   uint64_t now_ms, char out[SCAN_KEYS_LINE_MAX + 1]) {
  unsigned bit = mod_bit(code);
  int rc = SCAN_KEYS_NONE;
  char c;

  if (bit) {
    k->mods = pressed ? (k->mods | bit) : (k->mods & ~bit);
    return SCAN_KEYS_NONE;
  }
  if (!pressed)
    return SCAN_KEYS_NONE;
  if (code == KEY_CAPSLOCK) {
    k->caps = !k->caps;
    return SCAN_KEYS_NONE;
  }
  if (code == KEY_NUMLOCK || code == KEY_SCROLLLOCK)
    return SCAN_KEYS_NONE; /* scanners toggle these for keypad output */

  /* A line cut short (a scan aborted, a scanner set to send no Enter)
   * must not spoil the next scan. */
  if (k->started && k->gap_ms && now_ms - k->last_ms > k->gap_ms) {
    line_clear(k);
    rc = SCAN_KEYS_STALE;
  }
  k->last_ms = now_ms;

  if (code == KEY_ENTER || code == KEY_KPENTER) {
    if (!k->started)
      return rc;
    rc = k->bad ? k->bad : SCAN_KEYS_LINE;
    if (rc == SCAN_KEYS_LINE) {
      memcpy(out, k->line, k->n);
      out[k->n] = '\0';
    }
    line_clear(k);
    return rc;
  }

  k->started = 1;
  c = key_char(k->layout, code, (k->mods & M_SHIFT) != 0, k->caps);
  if (!c || (k->mods & M_CHORD)) {
    if (!k->bad)
      k->bad = SCAN_KEYS_CONTROL;
  } else if (k->n >= SCAN_KEYS_LINE_MAX) {
    if (!k->bad)
      k->bad = SCAN_KEYS_TOO_LONG;
  } else {
    k->line[k->n++] = c;
    k->line[k->n] = '\0';
  }
  return rc;
}

int scan_luhn_ok(const char *s) {
  int sum = 0;
  for (int i = 0; i < 8; i++)
    if (s[i] < '0' || s[i] > '9')
      return 0;
  /* from the right: the check digit as is, then every other one doubled */
  for (int i = 0; i < 8; i++) {
    int v = s[7 - i] - '0';
    if (i % 2 == 1) {
      v *= 2;
      if (v > 9)
        v -= 9;
    }
    sum += v;
  }
  return sum % 10 == 0;
}

#define TOKEN_LEN 43 /* 32 random bytes in base64url, no padding */
static const char b64url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int scan_payload_parse(const char *line, char *value, size_t value_len) {
  size_t n = strlen(line);
  char d[9];

  if (value_len > 0)
    value[0] = '\0';
  if (value_len < TOKEN_LEN + 1)
    return SCAN_OTHER;
  if (strncmp(line, "MG1:", 4) == 0) {
    if (n != 4 + TOKEN_LEN || strspn(line + 4, b64url) != TOKEN_LEN)
      return SCAN_OTHER;
    memcpy(value, line + 4, TOKEN_LEN + 1);
    return SCAN_TOKEN;
  }
  if (n == 8 && strspn(line, "0123456789") == 8) {
    memcpy(d, line, 9);
  } else if (n == 9 && line[4] == '-' && strspn(line, "0123456789") == 4 &&
             strspn(line + 5, "0123456789") == 4) {
    memcpy(d, line, 4);
    memcpy(d + 4, line + 5, 5);
  } else {
    return SCAN_OTHER;
  }
  if (!scan_luhn_ok(d))
    return SCAN_OTHER;
  memcpy(value, d, 9);
  return SCAN_NUMBER;
}
