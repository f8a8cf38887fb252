/* Unit tests of util.c: SHA-256 and hex (weed never checks payload hashes, so this is where
 * a wrong hash would be caught), S3 key encoding, durations, sizes, ids, time, JSON text. */
#include "../src/internal.h"
#include "testing.h"

#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void sha_hex(const char *data, size_t len, char out[65]) {
    uint8_t d[32];
    wm_sha256(data, len, d);
    wm_hex(d, 32, out);
}

static void test_sha256(void) {
    char hex[65];
    /* FIPS 180-2 / NIST vectors */
    sha_hex("", 0, hex);
    CHECK_STR(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    sha_hex("abc", 3, hex);
    CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    sha_hex(two, strlen(two), hex);
    CHECK_STR(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    const char *four = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklm"
                       "nopqklmnopqrlmnopqrsmnopqrstnopqrstu";
    sha_hex(four, strlen(four), hex);
    CHECK_STR(hex, "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
    char *million = malloc(1000000);
    memset(million, 'a', 1000000);
    sha_hex(million, 1000000, hex);
    CHECK_STR(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    free(million);
    /* lengths around the padding boundary (55, 56, 64 bytes), against coreutils' sha256sum */
    char block[65];
    memset(block, 'x', 64);
    sha_hex(block, 55, hex);
    CHECK_STR(hex, "d5e285683cd4efc02d021a5c62014694958901005d6f71e89e0989fac77e4072");
    sha_hex(block, 56, hex);
    CHECK_STR(hex, "04c26261370ee7541549d16dee320c723e3fd14671e66a099afe0a377c16888e");
    sha_hex(block, 64, hex);
    CHECK_STR(hex, "7ce100971f64e7001e8fe5a51973ecdfe1ced42befe7ee8d5fd6219506b5393c");
}

static void test_hex_and_keys(void) {
    uint8_t bytes[] = {0x00, 0x0f, 0xa5, 0xff};
    char out[9];
    wm_hex(bytes, 4, out);
    CHECK_STR(out, "000fa5ff");
    wm_buf b = {0};
    wm_buf_uri_encode_key(&b, "p re/fab1/2026-11-28/a:b+c=d,e~f_g.h\xC2\xB5");
    CHECK_STR(b.data, "p%20re/fab1/2026-11-28/a%3Ab%2Bc%3Dd%2Ce~f_g.h%C2%B5");
    wm_buf_free(&b);
}

static void test_quantities(void) {
    double s = -1;
    CHECK(wm_parse_duration("30", &s) == 0 && s == 30);
    CHECK(wm_parse_duration("500ms", &s) == 0 && s > 0.4999 && s < 0.5001);
    CHECK(wm_parse_duration(" 5m ", &s) == 0 && s == 300);
    CHECK(wm_parse_duration("1.5s", &s) == 0 && s == 1.5);
    CHECK(wm_parse_duration("2D", &s) == 0 && s == 172800);
    CHECK(wm_parse_duration("abc", &s) == -1);
    CHECK(wm_parse_duration("-1s", &s) == -1);
    CHECK(wm_parse_duration("5 years", &s) == -1);
    CHECK(wm_parse_duration("", &s) == -1);
    uint64_t n = 0;
    CHECK(wm_parse_size("1048576", &n) == 0 && n == 1048576);
    CHECK(wm_parse_size("64MiB", &n) == 0 && n == 64ull << 20);
    CHECK(wm_parse_size("1GB", &n) == 0 && n == 1000000000ull);
    CHECK(wm_parse_size("1 qb", &n) == -1);
}

static void test_ids_and_time(void) {
    wm_rng r;
    wm_rng_seed(&r);
    wm_idgen g;
    wm_idgen_init(&g);
    char a[37], b[37];
    int64_t now = 1764322200123456789LL; /* 2025-11-28T09:30:00.123Z: ms 0x019ac9cc4a3b */
    CHECK(wm_uuid7(&g, now, a) == 0);
    CHECK(wm_uuid7(&g, now, b) == 0);
    CHECK(wm_valid_uuid(a));
    CHECK(strcmp(a, b) != 0);
    CHECK(a[14] == '7'); /* version 7 */
    CHECK(strchr("89ab", a[19]) != NULL);
    CHECK(strncmp(a, "019ac9cc-4a3b-", 14) == 0); /* the time, in the first 48 bits */
    /* Time-ordered and unique over more ids than one pool read holds. */
    char prev[37] = "", id[37];
    for (int i = 0; i < 1000; i++) {
        CHECK(wm_uuid7(&g, now + (int64_t)i * 1000000, id) == 0);
        CHECK(strcmp(prev, id) < 0);
        memcpy(prev, id, sizeof id);
    }
    /* A forked child reads its own random bytes: never the parent's next id. */
    int fds[2];
    CHECK(pipe(fds) == 0);
    pid_t child = fork();
    if (child == 0) {
        char c[37];
        wm_uuid7(&g, now, c);
        ssize_t w = write(fds[1], c, 37);
        _exit(w == 37 ? 0 : 1);
    }
    char from_child[37] = "", mine[37];
    CHECK(read(fds[0], from_child, 37) == 37);
    waitpid(child, NULL, 0);
    close(fds[0]);
    close(fds[1]);
    wm_uuid7(&g, now, mine);
    CHECK(wm_valid_uuid(from_child));
    CHECK(strcmp(from_child + 14, mine + 14) != 0);
    CHECK(!wm_valid_uuid("6F9619FF-8B86-D011-B42D-00C04FC964FF"));
    char t[32];
    wm_format_time(1764322200123456789LL, t); /* 2025-11-28T09:30:00.123456789Z */
    CHECK_STR(t, "2025-11-28T09:30:00.123456Z");
    wm_format_time(0, t);
    CHECK_STR(t, "1970-01-01T00:00:00.000000Z");
    CHECK(wm_valid_site_id("fab1") && wm_valid_site_id("a.b_c-d"));
    CHECK(!wm_valid_site_id("-fab") && !wm_valid_site_id("../x") && !wm_valid_site_id(""));
    CHECK(!wm_valid_site_id("a/b"));
    for (double u, i = 0; i < 1000; i++) {
        u = wm_rng_uniform(&r);
        CHECK(u >= 0 && u < 1);
    }
}

static void test_json_text(void) {
    wm_buf b = {0};
    const char raw[] = "q\"b\\t\tn\nc\x01 \xC2\xB5 bad\xFF end";
    wm_buf_json_string(&b, raw, sizeof raw - 1);
    CHECK_STR(b.data, "\"q\\\"b\\\\t\\tn\\nc\\u0001 \xC2\xB5 bad\xEF\xBF\xBD end\"");
    cJSON *parsed = cJSON_Parse(b.data);
    CHECK(cJSON_IsString(parsed));
    cJSON_Delete(parsed);
    b.len = 0;
    wm_buf_json_number(&b, 1.5);
    wm_buf_puts(&b, " ");
    wm_buf_json_number(&b, -3);
    wm_buf_puts(&b, " ");
    wm_buf_json_number(&b, 0.0 / 0.0);
    wm_buf_puts(&b, " ");
    wm_buf_json_number(&b, 2);
    CHECK_STR(b.data, "1.5 0.0 0.0 2.0");
    wm_buf_free(&b);
    CHECK(wm_utf8_length("\xC2\xB5x") == 2);
    CHECK(wm_utf8_length("\xC0\x80") == -1);
}

int main(void) {
    test_sha256();
    test_hex_and_keys();
    test_quantities();
    test_ids_and_time();
    test_json_text();
    return test_result("test_util");
}
