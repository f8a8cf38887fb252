/* Direct mode to S3 against a REAL SeaweedFS (`weed mini` with auth on, started by
 * scripts/services): PUT one NDJSON object per batch signed with SigV4, then list and read
 * the objects back and check the events. A wrong secret must keep the events (403 is not
 * "stored"). Needs WAFERMON_TEST_S3_ENDPOINT (+ WAFERMON_TEST_S3_ACCESS_KEY_ID and
 * WAFERMON_TEST_S3_SECRET_ACCESS_KEY, default wafermon / wafermon-secret). weed does not
 * check payload hashes, so test_util checks the SHA-256 code. */
#include "../src/internal.h"
#include "testing.h"

static const char *endpoint, *key_id, *secret;

static size_t into_buf(char *d, size_t s, size_t n, void *u) {
    wm_buf_append(u, d, s * n);
    return s * n;
}

/* A signed request; returns the status, body in out (if not NULL). */
static long s3(const char *method, const char *path_and_query, wm_buf *out) {
    CURL *h = curl_easy_init();
    wm_buf url = {0}, sink = {0};
    wm_buf_printf(&url, "%s%s", endpoint, path_and_query);
    struct curl_slist *hdrs = curl_slist_append(
        NULL, "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    curl_easy_setopt(h, CURLOPT_URL, url.data);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_AWS_SIGV4, "aws:amz:us-east-1:s3");
    curl_easy_setopt(h, CURLOPT_USERNAME, key_id);
    curl_easy_setopt(h, CURLOPT_PASSWORD, secret);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, into_buf);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, out ? out : &sink);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 30L);
    long status = 0;
    if (curl_easy_perform(h) == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    wm_buf_free(&url);
    wm_buf_free(&sink);
    return status;
}

static void configure(const char *bucket, const char *tmp, const char *use_secret) {
    clear_wafermon_env();
    char url[200], spool[700];
    snprintf(url, sizeof url, "s3://%s/raw/c-sdk", bucket);
    snprintf(spool, sizeof spool, "%s/spool", tmp);
    setenv("WAFERMON_MODE", "direct", 1);
    setenv("WAFERMON_DIRECT_URL", url, 1);
    setenv("WAFERMON_S3_ENDPOINT", endpoint, 1);
    setenv("WAFERMON_SITE_ID", "fab1", 1);
    setenv("WAFERMON_SPOOL_DIR", spool, 1);
    setenv("WAFERMON_FLUSH_INTERVAL", "50ms", 1);
    setenv("WAFERMON_MAX_RETRIES", "0", 1);
    setenv("AWS_ACCESS_KEY_ID", key_id, 1);
    setenv("AWS_SECRET_ACCESS_KEY", use_secret, 1);
}

int main(void) {
    endpoint = getenv("WAFERMON_TEST_S3_ENDPOINT");
    if (!endpoint || !*endpoint)
        need_server("WAFERMON_TEST_S3_ENDPOINT is not set (eval \"$(scripts/services start)\")");
    key_id = getenv("WAFERMON_TEST_S3_ACCESS_KEY_ID");
    secret = getenv("WAFERMON_TEST_S3_SECRET_ACCESS_KEY");
    key_id = key_id && *key_id ? key_id : "wafermon";
    secret = secret && *secret ? secret : "wafermon-secret";
    wafermon_global_init();
    char *tmp = make_temp_dir();
    wm_rng rng;
    wm_rng_seed(&rng);
    char bucket[64], path[256];
    snprintf(bucket, sizeof bucket, "wafermon-c-%08x", (unsigned)wm_rng_next(&rng));
    snprintf(path, sizeof path, "/%s", bucket);
    long status = s3("PUT", path, NULL);
    if (status != 200) {
        fprintf(stderr, "cannot create bucket %s at %s: HTTP %ld\n", bucket, endpoint, status);
        need_server("the S3 server did not create a bucket");
    }

    /* a wrong secret: nothing is stored, the events stay with the SDK */
    configure(bucket, tmp, "not-the-secret");
    wafermon_client *c;
    char err[512];
    REQUIRE(wafermon_client_new_from_env(&c, err, sizeof err) == WAFERMON_OK);
    CHECK(wafermon_emit_event(c, "{\"site_id\":\"fab1\",\"time\":\"2026-11-28T09:30:00Z\"}",
                              (size_t)-1) == WAFERMON_OK);
    CHECK(wafermon_client_flush(c, 1) == WAFERMON_ERR_TIMEOUT);
    wafermon_client_last_error(c, err, sizeof err);
    CHECK(strstr(err, "403") != NULL);
    CHECK(wafermon_client_close(c, 0) == WAFERMON_ERR_TIMEOUT); /* spooled */

    /* the right secret: the spooled event and new ones land, one object per batch */
    configure(bucket, tmp, secret);
    REQUIRE(wafermon_client_new_from_env(&c, err, sizeof err) == WAFERMON_OK);
    wafermon_app app = {.name = "s3 test: \xC2\xB5+=,"};
    wafermon_job_options o = {.app = &app, .business_key = "LOT 1/2"};
    wafermon_job *job;
    REQUIRE(wafermon_job_start(c, &o, &job, err, sizeof err) == WAFERMON_OK);
    CHECK(wafermon_job_progress(job, 0.25, "{\"quote\":\"a\\\"b\"}") == WAFERMON_OK);
    CHECK(wafermon_job_finish(job) == WAFERMON_OK);
    CHECK(wafermon_client_flush(c, 30) == WAFERMON_OK);
    wafermon_stats st;
    wafermon_client_stats(c, &st);
    CHECK(st.replayed == 1 && st.sent == 4 && st.spool_files == 0);
    CHECK(wafermon_client_close(c, 5) == WAFERMON_OK);

    wm_buf listing = {0};
    snprintf(path, sizeof path, "/%s?list-type=2&prefix=raw%%2Fc-sdk%%2Ffab1%%2F", bucket);
    CHECK(s3("GET", path, &listing) == 200);
    int objects = 0, lines = 0, kinds = 0;
    for (const char *k = listing.data; k && (k = strstr(k, "<Key>")); k += 5) {
        const char *end = strstr(k, "</Key>");
        if (!end)
            break;
        char key[512];
        snprintf(key, sizeof key, "%.*s", (int)(end - k - 5), k + 5);
        CHECK(strncmp(key, "raw/c-sdk/fab1/20", 17) == 0);
        CHECK(strstr(key, ".jsonl") != NULL);
        wm_buf obj = {0}, url = {0};
        wm_buf_printf(&url, "/%s/", bucket);
        wm_buf_uri_encode_key(&url, key);
        CHECK(s3("GET", url.data, &obj) == 200);
        objects++;
        for (char *save = NULL, *line = strtok_r(obj.data, "\n", &save); line;
             line = strtok_r(NULL, "\n", &save)) {
            cJSON *e = cJSON_Parse(line);
            CHECK(e != NULL);
            lines++;
            const char *kind = jstr(e, "kind");
            if (kind && !strcmp(kind, "progress")) {
                kinds++;
                CHECK_STR(jstr(e, "metadata.quote"), "a\"b");
                CHECK_STR(jstr(e, "app.name"), "s3 test: \xC2\xB5+=,");
                CHECK_STR(jstr(e, "entity.business_key"), "LOT 1/2");
            }
            cJSON_Delete(e);
        }
        s3("DELETE", url.data, NULL);
        wm_buf_free(&obj);
        wm_buf_free(&url);
    }
    CHECK(objects >= 2 && lines == 4 && kinds == 1);
    wm_buf_free(&listing);
    snprintf(path, sizeof path, "/%s", bucket);
    s3("DELETE", path, NULL);
    remove_tree(tmp);
    free(tmp);
    clear_wafermon_env();
    wafermon_global_cleanup();
    return test_result("test_s3");
}
