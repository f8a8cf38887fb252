/*
 * util.c - small building blocks: growing buffers, JSON string text, RFC 3339 time, UUIDs,
 * duration/size parsing, SHA-256 and hex. No I/O besides getrandom() for seeding.
 */
#include "internal.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

int wm_buf_reserve(wm_buf *b, size_t extra) {
    if (b->len + extra + 1 <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p)
        return -1;
    b->data = p;
    b->cap = cap;
    return 0;
}

int wm_buf_append(wm_buf *b, const char *s, size_t n) {
    if (wm_buf_reserve(b, n))
        return -1;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int wm_buf_puts(wm_buf *b, const char *s) { return wm_buf_append(b, s, strlen(s)); }

int wm_buf_printf(wm_buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || wm_buf_reserve(b, (size_t)n))
        return -1;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

/* Length of the valid UTF-8 sequence at s (1-4), or 0 if invalid. */
static size_t utf8_sequence(const unsigned char *s, size_t n) {
    unsigned char c = s[0];
    size_t len;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

int wm_buf_json_string(wm_buf *b, const char *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    if (wm_buf_reserve(b, n + 2))
        return -1;
    b->data[b->len++] = '"';
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        size_t run = i;
        while (run < n && p[run] >= 0x20 && p[run] < 0x80 && p[run] != '"' && p[run] != '\\')
            run++;
        if (run > i) {
            if (wm_buf_append(b, s + i, run - i))
                return -1;
            i = run;
            continue;
        }
        unsigned char c = p[i];
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            if (wm_buf_append(b, esc, 2))
                return -1;
            i++;
        } else if (c < 0x20) {
            const char *named = c == '\n' ? "\\n" : c == '\t' ? "\\t" : c == '\r' ? "\\r" : NULL;
            if (named) {
                if (wm_buf_append(b, named, 2))
                    return -1;
            } else {
                memcpy(esc, "\\u00", 4);
                esc[4] = hex[c >> 4];
                esc[5] = hex[c & 15];
                if (wm_buf_append(b, esc, 6))
                    return -1;
            }
            i++;
        } else {
            size_t len = utf8_sequence(p + i, n - i);
            if (len == 0) {
                if (wm_buf_append(b, "\xEF\xBF\xBD", 3)) /* U+FFFD */
                    return -1;
                i++;
            } else {
                if (wm_buf_append(b, s + i, len))
                    return -1;
                i += len;
            }
        }
    }
    return wm_buf_append(b, "\"", 1);
}

int wm_buf_json_number(wm_buf *b, double v) {
    if (isnan(v) || v < 0)
        v = 0;
    if (isinf(v))
        v = 1e300;
    if (v == floor(v) && v < 1e15)
        return wm_buf_printf(b, "%.1f", v);
    return wm_buf_printf(b, "%.9g", v);
}

/* Shortest text that reads back as exactly v (cJSON's own printer may drop the last digit
 * of large integers such as 2^53 - 1). */
static int json_exact_number(wm_buf *b, double v) {
    if (!isfinite(v))
        return wm_buf_puts(b, "null");
    if (v == floor(v) && fabs(v) < 1e17)
        return wm_buf_printf(b, "%.0f", v);
    char text[40];
    for (int digits = 15; digits <= 17; digits++) {
        snprintf(text, sizeof text, "%.*g", digits, v);
        if (strtod(text, NULL) == v)
            break;
    }
    return wm_buf_puts(b, text);
}

int wm_buf_json_value(wm_buf *b, const cJSON *item) {
    if (!item)
        return wm_buf_puts(b, "null");
    if (cJSON_IsNull(item))
        return wm_buf_puts(b, "null");
    if (cJSON_IsFalse(item))
        return wm_buf_puts(b, "false");
    if (cJSON_IsTrue(item))
        return wm_buf_puts(b, "true");
    if (cJSON_IsNumber(item))
        return json_exact_number(b, item->valuedouble);
    if (cJSON_IsString(item))
        return wm_buf_json_string(b, item->valuestring, strlen(item->valuestring));
    if (cJSON_IsRaw(item))
        return wm_buf_puts(b, item->valuestring ? item->valuestring : "null");
    int is_object = cJSON_IsObject(item);
    if (wm_buf_puts(b, is_object ? "{" : "["))
        return -1;
    for (const cJSON *child = item->child; child; child = child->next) {
        if (child != item->child && wm_buf_puts(b, ","))
            return -1;
        if (is_object && (wm_buf_json_string(b, child->string, strlen(child->string)) ||
                          wm_buf_puts(b, ":")))
            return -1;
        if (wm_buf_json_value(b, child))
            return -1;
    }
    return wm_buf_puts(b, is_object ? "}" : "]");
}

void wm_buf_free(wm_buf *b) {
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void wm_copy_text(char *dst, size_t dstlen, const char *src) {
    if (!dst || dstlen == 0)
        return;
    size_t n = strlen(src);
    if (n >= dstlen)
        n = dstlen - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

void wm_format_error(char *dst, size_t dstlen, const char *fmt, ...) {
    if (!dst || dstlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst, dstlen, fmt, ap);
    va_end(ap);
}

void wm_format_time(int64_t unix_ns, char out[32]) {
    time_t secs = (time_t)(unix_ns / 1000000000);
    long micros = (long)((unix_ns % 1000000000) / 1000);
    if (micros < 0) {
        micros += 1000000;
        secs -= 1;
    }
    struct tm tm;
    gmtime_r(&secs, &tm);
    char text[96];
    snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, micros);
    wm_copy_text(out, 32, text);
}

int64_t wm_realtime_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

double wm_monotonic_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void wm_rng_seed(wm_rng *r) {
    uint8_t seed[32];
    size_t got = 0;
    while (got < sizeof seed) {
        ssize_t n = getrandom(seed + got, sizeof seed - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    if (got < sizeof seed) { /* no getrandom: the clock and address, better than nothing */
        uint64_t t = (uint64_t)wm_realtime_ns() ^ (uint64_t)(uintptr_t)r;
        for (size_t i = 0; i < sizeof seed; i++)
            seed[i] ^= (uint8_t)(t >> ((i % 8) * 8)) + (uint8_t)i;
    }
    memcpy(r->s, seed, sizeof seed);
    if (!(r->s[0] | r->s[1] | r->s[2] | r->s[3]))
        r->s[0] = 1;
}

uint64_t wm_rng_next(wm_rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double wm_rng_uniform(wm_rng *r) { return (double)(wm_rng_next(r) >> 11) * 0x1.0p-53; }

void wm_idgen_init(wm_idgen *g) {
    g->pos = sizeof g->pool; /* empty: the first id reads the kernel */
    g->pid = 0;
}

static int fill(uint8_t *p, size_t n) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = getrandom(p + got, n - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

int wm_uuid7(wm_idgen *g, int64_t now_ns, char out[37]) {
    static const char hex[] = "0123456789abcdef";
    long pid = (long)getpid();
    if (g->pid != pid || g->pos + 10 > sizeof g->pool) {
        if (fill(g->pool, sizeof g->pool)) {
            out[0] = '\0';
            return -1;
        }
        g->pos = 0;
        g->pid = pid;
    }
    uint8_t b[16];
    uint64_t ms = (uint64_t)(now_ns / 1000000);
    for (int i = 0; i < 6; i++)
        b[i] = (uint8_t)(ms >> (40 - 8 * i));
    memcpy(b + 6, g->pool + g->pos, 10);
    memset(g->pool + g->pos, 0, 10); /* used bytes do not linger */
    g->pos += 10;
    b[6] = (uint8_t)((b[6] & 0x0F) | 0x70); /* version 7 */
    b[8] = (uint8_t)((b[8] & 0x3F) | 0x80); /* RFC 9562 variant */
    char *o = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *o++ = '-';
        *o++ = hex[b[i] >> 4];
        *o++ = hex[b[i] & 15];
    }
    *o = '\0';
    return 0;
}

/* "<number><unit>" with optional spaces; the unit looked up case-insensitively. */
static int parse_quantity(const char *text, const char *const *units, const double *factors,
                          double *out) {
    const char *p = text;
    while (isspace((unsigned char)*p))
        p++;
    if (!isdigit((unsigned char)*p))
        return -1;
    const char *num = p;
    while (isdigit((unsigned char)*p))
        p++;
    if (*p == '.') {
        p++;
        if (!isdigit((unsigned char)*p))
            return -1;
        while (isdigit((unsigned char)*p))
            p++;
    }
    char numtext[64];
    size_t nlen = (size_t)(p - num);
    if (nlen >= sizeof numtext)
        return -1;
    memcpy(numtext, num, nlen);
    numtext[nlen] = '\0';
    while (isspace((unsigned char)*p))
        p++;
    char unit[8];
    size_t ulen = 0;
    while (isalpha((unsigned char)*p)) {
        if (ulen + 1 >= sizeof unit)
            return -1;
        unit[ulen++] = (char)tolower((unsigned char)*p++);
    }
    unit[ulen] = '\0';
    while (isspace((unsigned char)*p))
        p++;
    if (*p)
        return -1;
    for (size_t i = 0; units[i]; i++) {
        if (strcmp(unit, units[i]) == 0) {
            *out = strtod(numtext, NULL) * factors[i];
            return 0;
        }
    }
    return -1;
}

int wm_parse_duration(const char *text, double *seconds) {
    static const char *const units[] = {"", "ms", "s", "m", "h", "d", NULL};
    static const double factors[] = {1, 0.001, 1, 60, 3600, 86400};
    return parse_quantity(text, units, factors, seconds);
}

int wm_parse_size(const char *text, uint64_t *bytes) {
    static const char *const units[] = {"", "b", "kb", "mb", "gb", "tb", "kib", "mib", "gib",
                                        "tib", NULL};
    static const double factors[] = {1,    1,       1e3,     1e6,     1e9,
                                     1e12, 1024.0, 1048576.0, 1073741824.0, 1099511627776.0};
    double v;
    if (parse_quantity(text, units, factors, &v) || v > 1.8e19)
        return -1;
    *bytes = (uint64_t)v;
    return 0;
}

/* ---- SHA-256, FIPS 180-4 --------------------------------------------------------------- */

static const uint32_t K256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
    0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
    0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
    0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
    0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
    0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
    0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2};

static uint32_t ror(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

static void sha256_block(uint32_t h[8], const uint8_t *p) {
    uint32_t w[64];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ror(w[i - 15], 7) ^ ror(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ror(w[i - 2], 17) ^ ror(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = k + (ror(e, 6) ^ ror(e, 11) ^ ror(e, 25)) + ((e & f) ^ (~e & g)) +
                      K256[i] + w[i];
        uint32_t t2 = (ror(a, 2) ^ ror(a, 13) ^ ror(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        k = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
    h[5] += f;
    h[6] += g;
    h[7] += k;
}

void wm_sha256(const void *data, size_t len, uint8_t digest[32]) {
    uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                     0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    const uint8_t *p = data;
    size_t left = len;
    while (left >= 64) {
        sha256_block(h, p);
        p += 64;
        left -= 64;
    }
    uint8_t tail[128] = {0};
    if (left)
        memcpy(tail, p, left);
    tail[left] = 0x80;
    size_t tail_len = left < 56 ? 64 : 128;
    uint64_t bits = (uint64_t)len * 8;
    for (int i = 0; i < 8; i++)
        tail[tail_len - 1 - i] = (uint8_t)(bits >> (8 * i));
    sha256_block(h, tail);
    if (tail_len == 128)
        sha256_block(h, tail + 64);
    for (int i = 0; i < 8; i++) {
        digest[4 * i] = (uint8_t)(h[i] >> 24);
        digest[4 * i + 1] = (uint8_t)(h[i] >> 16);
        digest[4 * i + 2] = (uint8_t)(h[i] >> 8);
        digest[4 * i + 3] = (uint8_t)h[i];
    }
}

void wm_hex(const uint8_t *bytes, size_t n, char *out) {
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[bytes[i] >> 4];
        out[2 * i + 1] = hex[bytes[i] & 15];
    }
    out[2 * n] = '\0';
}

int wm_buf_uri_encode_key(wm_buf *b, const char *key) {
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
        if (isalnum(*p) || *p == '-' || *p == '_' || *p == '.' || *p == '~' || *p == '/') {
            if (wm_buf_append(b, (const char *)p, 1))
                return -1;
        } else {
            char esc[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            if (wm_buf_append(b, esc, 3))
                return -1;
        }
    }
    return 0;
}

int wm_valid_site_id(const char *s) {
    if (!s || !isalnum((unsigned char)s[0]) || (unsigned char)s[0] >= 0x80)
        return 0;
    size_t n = 1;
    for (const char *p = s + 1; *p; p++, n++) {
        unsigned char c = (unsigned char)*p;
        if (c >= 0x80 || !(isalnum(c) || c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return n <= 64;
}

int wm_valid_uuid(const char *s) {
    if (!s || strlen(s) != 36)
        return 0;
    for (int i = 0; i < 36; i++) {
        char c = s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-')
                return 0;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return 0;
        }
    }
    return 1;
}

long wm_utf8_length(const char *s) {
    size_t n = strlen(s);
    long count = 0;
    for (size_t i = 0; i < n;) {
        size_t len = utf8_sequence((const unsigned char *)s + i, n - i);
        if (len == 0)
            return -1;
        i += len;
        count++;
    }
    return count;
}
