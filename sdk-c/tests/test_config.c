/* Settings from the environment: defaults, every parser, and errors that name the variable
 * (the messages are what the conformance runner and users see, so they are checked verbatim). */
#include "../src/internal.h"
#include "testing.h"

static char err[1024];

static int load(wm_settings *s) { return wm_settings_from_env(s, err, sizeof err); }

/* Loading must fail with exactly this message, and through the public API too. */
static void expect_error(const char *message) {
    wm_settings s;
    CHECK(load(&s) == -1);
    CHECK_STR(err, message);
    wafermon_client *c = (wafermon_client *)1;
    char buf[1024];
    CHECK(wafermon_client_new_from_env(&c, buf, sizeof buf) == WAFERMON_ERR_CONFIG);
    CHECK(c == NULL);
    CHECK_STR(buf, message);
}

static void test_defaults(void) {
    clear_wafermon_env();
    setenv("HOME", "/home/tester", 1);
    unsetenv("XDG_CACHE_HOME");
    wm_settings s;
    REQUIRE(load(&s) == 0);
    CHECK(s.mode == WM_MODE_SIDECAR);
    CHECK_STR(s.sidecar_url, "http://127.0.0.1:17000");
    CHECK(s.token == NULL && s.site_id == NULL);
    CHECK_STR(s.spool_dir, "/home/tester/.cache/wafermon-sdk-c/spool");
    CHECK(s.queue_size == 10000 && s.batch_size == 500 && s.max_retries == 5);
    CHECK(s.flush_interval == 0.2 && s.timeout == 10 && s.retry_base_delay == 0.2);
    CHECK(s.retry_max_delay == 30 && s.replay_interval == 1 && s.flush_timeout == 10);
    wm_settings_free(&s);
}

static void test_values(void) {
    clear_wafermon_env();
    setenv("WAFERMON_MODE", " Direct ", 1);
    setenv("WAFERMON_DIRECT_URL", "file:///var/lib/wafermon/events/", 1);
    setenv("WAFERMON_SIDECAR_URL", "https://sidecar.fab1:17443/", 1);
    setenv("WAFERMON_TOKEN", "s3cret", 1);
    setenv("WAFERMON_SITE_ID", "fab1", 1);
    setenv("WAFERMON_QUEUE_SIZE", "64", 1);
    setenv("WAFERMON_BATCH_SIZE", "8", 1);
    setenv("WAFERMON_FLUSH_INTERVAL", "50ms", 1);
    setenv("WAFERMON_RETRY_MAX_DELAY", "1m", 1);
    setenv("WAFERMON_SPOOL_DIR", "/tmp/x", 1);
    wm_settings s;
    REQUIRE(load(&s) == 0);
    CHECK(s.mode == WM_MODE_DIRECT && s.direct_kind == WM_DIRECT_FILE);
    CHECK_STR(s.file_root, "/var/lib/wafermon/events");
    CHECK_STR(s.sidecar_url, "https://sidecar.fab1:17443");
    CHECK_STR(s.token, "s3cret");
    CHECK_STR(s.site_id, "fab1");
    CHECK(s.queue_size == 64 && s.batch_size == 8 && s.retry_max_delay == 60);
    CHECK(s.flush_interval > 0.0499 && s.flush_interval < 0.0501);
    wm_settings_free(&s);

    clear_wafermon_env();
    setenv("WAFERMON_MODE", "direct", 1);
    setenv("WAFERMON_DIRECT_URL", "s3://wafer-events/raw/c/", 1);
    setenv("WAFERMON_S3_ENDPOINT", "http://127.0.0.1:18333", 1);
    setenv("AWS_ACCESS_KEY_ID", "k", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "s", 1);
    REQUIRE(load(&s) == 0);
    CHECK(s.direct_kind == WM_DIRECT_S3);
    CHECK_STR(s.s3_bucket, "wafer-events");
    CHECK_STR(s.s3_prefix, "raw/c");
    CHECK_STR(s.s3_region, "us-east-1");
    CHECK_STR(s.s3_endpoint, "http://127.0.0.1:18333");
    wm_settings_free(&s);
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
}

static void test_errors(void) {
    clear_wafermon_env();
    setenv("WAFERMON_MODE", "sidcar", 1);
    expect_error("WAFERMON_MODE: must be one of sidecar, direct, got 'sidcar'");

    clear_wafermon_env();
    setenv("WAFERMON_SIDECAR_URL", "127.0.0.1:17000", 1);
    expect_error("WAFERMON_SIDECAR_URL: expected an http:// or https:// URL such as "
                 "http://127.0.0.1:17000, got '127.0.0.1:17000'");

    clear_wafermon_env();
    setenv("WAFERMON_SIDECAR_URL", "http://127.0.0.1:99999", 1);
    expect_error("WAFERMON_SIDECAR_URL: has an invalid port: 'http://127.0.0.1:99999'");

    clear_wafermon_env();
    setenv("WAFERMON_QUEUE_SIZE", "ten", 1);
    setenv("WAFERMON_BATCH_SIZE", "0", 1);
    setenv("WAFERMON_FLUSH_INTERVAL", "soon", 1);
    expect_error("WAFERMON_QUEUE_SIZE: expected an integer, got 'ten'; WAFERMON_BATCH_SIZE: "
                 "must be at least 1, got 0; WAFERMON_FLUSH_INTERVAL: expected a duration such "
                 "as 30, 500ms, 30s, 5m, 1h or 2d, got 'soon'");

    clear_wafermon_env();
    setenv("WAFERMON_SITE_ID", "fab 1", 1);
    expect_error("WAFERMON_SITE_ID: must be 1-64 letters, digits, '.', '_' or '-' starting "
                 "with a letter or digit, got 'fab 1'");

    clear_wafermon_env();
    setenv("WAFERMON_MODE", "direct", 1);
    expect_error("WAFERMON_DIRECT_URL: required when WAFERMON_MODE is direct: file:///abs/root "
                 "or s3://bucket/prefix");

    clear_wafermon_env();
    setenv("WAFERMON_MODE", "direct", 1);
    setenv("WAFERMON_DIRECT_URL", "ftp://x", 1);
    expect_error("WAFERMON_DIRECT_URL: expected file:///abs/root or s3://bucket/prefix, got "
                 "'ftp://x'");

    clear_wafermon_env();
    setenv("WAFERMON_MODE", "direct", 1);
    setenv("WAFERMON_DIRECT_URL", "s3://b/", 1);
    expect_error("WAFERMON_DIRECT_URL: expected s3://bucket/prefix with a valid bucket name "
                 "(3-63 lower-case letters, digits, '.', '-'), got 's3://b/'");

    clear_wafermon_env();
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    setenv("WAFERMON_MODE", "direct", 1);
    setenv("WAFERMON_DIRECT_URL", "s3://bucket-1/p", 1);
    expect_error("AWS_ACCESS_KEY_ID: required for an s3:// WAFERMON_DIRECT_URL; "
                 "AWS_SECRET_ACCESS_KEY: required for an s3:// WAFERMON_DIRECT_URL");

    clear_wafermon_env();
    setenv("WAFERMON_RETRY_BASE_DELAY", "2s", 1);
    setenv("WAFERMON_RETRY_MAX_DELAY", "1s", 1);
    expect_error("WAFERMON_RETRY_MAX_DELAY: must not be less than WAFERMON_RETRY_BASE_DELAY");

    clear_wafermon_env();
    setenv("WAFERMON_VERIFY_TLS", "maybe", 1);
    expect_error("WAFERMON_VERIFY_TLS: expected true or false, got 'maybe'");

    /* the spool folder is checked when the client is made, and named */
    clear_wafermon_env();
    setenv("WAFERMON_SPOOL_DIR", "/proc/version/spool", 1);
    wafermon_client *c = NULL;
    char buf[1024];
    CHECK(wafermon_client_new_from_env(&c, buf, sizeof buf) == WAFERMON_ERR_CONFIG);
    CHECK(strncmp(buf, "WAFERMON_SPOOL_DIR: cannot create /proc/version/spool/sidecar", 61) == 0);

    /* a short buffer is cut, never overrun */
    clear_wafermon_env();
    setenv("WAFERMON_MODE", "sidcar", 1);
    char tiny[8];
    memset(tiny, 'Z', sizeof tiny);
    CHECK(wafermon_client_new_from_env(&c, tiny, sizeof tiny) == WAFERMON_ERR_CONFIG);
    CHECK_STR(tiny, "WAFERMO");
    CHECK(wafermon_client_new_from_env(&c, NULL, 0) == WAFERMON_ERR_CONFIG);
    clear_wafermon_env();
}

int main(void) {
    wafermon_global_init();
    test_defaults();
    test_values();
    test_errors();
    CHECK_STR(wafermon_status_str(WAFERMON_ERR_QUEUE_FULL), "queue full");
    wafermon_global_cleanup();
    return test_result("test_config");
}
