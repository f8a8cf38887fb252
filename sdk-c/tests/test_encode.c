/* The encoder against the schema's expectations (core/src/wafermon/schemas/event.v1.schema.json
 * and conformance/PROTOCOL.md): field names and types, ids, time format, metrics per kind,
 * metadata merge and cap, error limits. The real sidecar validates the same output against
 * the schema itself in test_sidecar. */
#include "../src/internal.h"
#include "testing.h"

#include <regex.h>

static const char *TOP_KEYS[] = {"schema_version", "event_id", "kind", "time",   "site_id", "app",
                                 "entity",         "metrics",  "metadata", "error", "source", NULL};

static int matches(const char *pattern, const char *text) {
    regex_t re;
    REQUIRE(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB) == 0);
    int ok = text && regexec(&re, text, 0, NULL, 0) == 0;
    regfree(&re);
    return ok;
}

static wm_entity *entity(int subjob, const char *metadata) {
    wm_entity *e = calloc(1, sizeof *e);
    atomic_init(&e->refs, 1);
    e->is_subjob = subjob;
    strcpy(e->id, subjob ? "wafer-7" : "0d6f4a57-6c53-4d1e-9c3e-1f2a3b4c5d6e");
    e->site_id = strdup("fab1");
    e->app_name = strdup("wafer \"process\"");
    e->app_version = strdup("2.1.0");
    e->parent_id = subjob ? strdup("0d6f4a57-6c53-4d1e-9c3e-1f2a3b4c5d6e") : NULL;
    e->business_key = strdup("LOT-12345");
    e->sub_key = subjob ? strdup("wafer-07") : NULL;
    e->initial_metadata = metadata ? strdup(metadata) : NULL;
    return e;
}

/* Encode one record and parse the line; checks what every event must have. */
static cJSON *encode(wm_encoder *enc, wm_record *r) {
    wm_buf out = {0};
    char err[200];
    REQUIRE(wm_encode_record(enc, r, &out, err, sizeof err) == 0);
    CHECK(out.len > 0 && out.data[out.len - 1] == '\n');
    CHECK(memchr(out.data, '\n', out.len) == out.data + out.len - 1); /* one line */
    cJSON *doc = cJSON_ParseWithLength(out.data, out.len);
    REQUIRE(cJSON_IsObject(doc));
    wm_buf_free(&out);
    for (cJSON *item = doc->child; item; item = item->next) {
        int known = 0;
        for (int i = 0; TOP_KEYS[i]; i++)
            known |= strcmp(item->string, TOP_KEYS[i]) == 0;
        if (!known)
            fprintf(stderr, "unexpected key %s\n", item->string);
        CHECK(known);
    }
    CHECK(jnum(doc, "schema_version") == 1);
    /* UUID version 7: time-ordered, random bits from getrandom() */
    CHECK(matches("^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$",
                  jstr(doc, "event_id")));
    CHECK(matches("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,6})?Z$",
                  jstr(doc, "time")));
    CHECK_STR(jstr(doc, "site_id"), "fab1");
    CHECK_STR(jstr(doc, "app.name"), "wafer \"process\"");
    CHECK_STR(jstr(doc, "app.version"), "2.1.0");
    CHECK_STR(jstr(doc, "source.sdk"), "wafermon-sdk-c");
    CHECK_STR(jstr(doc, "source.sdk_version"), WAFERMON_VERSION);
    CHECK(jnum(doc, "source.pid") == (double)getpid());
    CHECK(jstr(doc, "source.host") != NULL);
    return doc;
}

static wm_record lifecycle(wm_entity *e, int kind) {
    wm_record r = {0};
    r.type = WM_REC_LIFECYCLE;
    r.kind = (uint8_t)kind;
    r.entity = e;
    atomic_fetch_add(&e->refs, 1);
    r.time_ns = 1764322200123456789LL;
    return r;
}

static void test_lifecycle(void) {
    wm_encoder enc;
    wm_encoder_init(&enc);
    wm_entity *job = entity(0, "{\"tool\":\"etch-07\",\"n\":1}");

    wm_record r = lifecycle(job, WM_KIND_STARTED);
    cJSON *doc = encode(&enc, &r);
    CHECK_STR(jstr(doc, "kind"), "started");
    CHECK_STR(jstr(doc, "time"), "2025-11-28T09:30:00.123456Z");
    CHECK_STR(jstr(doc, "entity.type"), "job");
    CHECK_STR(jstr(doc, "entity.id"), "0d6f4a57-6c53-4d1e-9c3e-1f2a3b4c5d6e");
    CHECK_STR(jstr(doc, "entity.business_key"), "LOT-12345");
    CHECK(cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "entity"), "parent_id") == NULL);
    CHECK(cJSON_GetObjectItem(doc, "metrics") == NULL);
    CHECK(cJSON_GetObjectItem(doc, "error") == NULL);
    CHECK_STR(jstr(doc, "metadata.tool"), "etch-07");
    char first_id[40];
    snprintf(first_id, sizeof first_id, "%s", jstr(doc, "event_id"));
    cJSON_Delete(doc);
    wm_record_clear(&r);

    r = lifecycle(job, WM_KIND_PROGRESS);
    r.has_metrics = 1;
    r.duration_s = 1.25;
    r.has_progress = 1;
    r.progress = 7; /* above 1 is sent as 1 */
    r.text = strdup("{\"n\":2,\"step\":\"etch\"}");
    r.text_len = strlen(r.text);
    doc = encode(&enc, &r);
    CHECK_STR(jstr(doc, "kind"), "progress");
    CHECK(strcmp(jstr(doc, "event_id"), first_id) != 0);
    CHECK(jnum(doc, "metrics.duration_s") == 1.25);
    CHECK(jnum(doc, "metrics.progress") == 1);
    CHECK(cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "metrics"), "cpu_user_s") == NULL);
    CHECK_STR(jstr(doc, "metadata.tool"), "etch-07"); /* merged, not replaced */
    CHECK_STR(jstr(doc, "metadata.step"), "etch");
    CHECK(jnum(doc, "metadata.n") == 2);
    cJSON_Delete(doc);
    wm_record_clear(&r);

    r = lifecycle(job, WM_KIND_FINISHED);
    r.has_metrics = 1;
    r.duration_s = 3;
    r.cpu_user_s = 0.5;
    r.cpu_system_s = -1; /* never negative on the wire */
    r.mem_max_mb = 12.5;
    doc = encode(&enc, &r);
    CHECK_STR(jstr(doc, "kind"), "finished");
    CHECK(jnum(doc, "metrics.duration_s") == 3 && jnum(doc, "metrics.cpu_user_s") == 0.5);
    CHECK(jnum(doc, "metrics.cpu_system_s") == 0 && jnum(doc, "metrics.mem_max_mb") == 12.5);
    CHECK_STR(jstr(doc, "metadata.step"), "etch"); /* the metadata as it stands */
    cJSON_Delete(doc);
    wm_record_clear(&r);
    wm_entity_release(job);
}

static void test_subjob_failed_and_limits(void) {
    wm_encoder enc;
    wm_encoder_init(&enc);
    wm_entity *sub = entity(1, NULL);
    wm_record r = lifecycle(sub, WM_KIND_FAILED);
    r.has_metrics = 1;
    size_t big = 9000;
    r.error = malloc(6 + big + 1 + 6);
    memcpy(r.error, "Boom\0", 5);
    memset(r.error + 5, 'm', big);
    r.error[5 + big] = '\0';
    memcpy(r.error + 6 + big, "trace", 6);
    r.has_stack = 1;
    cJSON *doc = encode(&enc, &r);
    CHECK_STR(jstr(doc, "kind"), "failed");
    CHECK_STR(jstr(doc, "entity.type"), "subjob");
    CHECK_STR(jstr(doc, "entity.parent_id"), "0d6f4a57-6c53-4d1e-9c3e-1f2a3b4c5d6e");
    CHECK_STR(jstr(doc, "entity.sub_key"), "wafer-07");
    CHECK_STR(jstr(doc, "error.type"), "Boom");
    CHECK(jstr(doc, "error.message") && strlen(jstr(doc, "error.message")) == 8192);
    CHECK_STR(jstr(doc, "error.stack"), "trace");
    CHECK(cJSON_GetObjectItem(doc, "metadata") == NULL); /* empty metadata is left out */
    cJSON_Delete(doc);
    wm_record_clear(&r);

    /* metadata above the cap is replaced, the event still goes */
    r = lifecycle(sub, WM_KIND_PROGRESS);
    wm_buf patch = {0};
    wm_buf_puts(&patch, "{\"blob\":\"");
    for (int i = 0; i < 17000; i++)
        wm_buf_puts(&patch, "x");
    wm_buf_puts(&patch, "\"}");
    r.text = patch.data;
    r.text_len = patch.len;
    doc = encode(&enc, &r);
    const char *note = jstr(doc, "metadata.wafermon_sdk_truncated");
    CHECK(note && strstr(note, "17011 bytes") && strstr(note, "16384-byte cap"));
    CHECK(enc.metadata_truncated == 1);
    cJSON_Delete(doc);
    wm_record_clear(&r);

    /* exactly at the cap is kept */
    wm_entity *e2 = entity(0, NULL);
    r = lifecycle(e2, WM_KIND_PROGRESS);
    wm_buf p2 = {0};
    wm_buf_puts(&p2, "{\"b\":\"");
    for (int i = 0; i < 16384 - 8; i++)
        wm_buf_puts(&p2, "y");
    wm_buf_puts(&p2, "\"}");
    CHECK(p2.len == 16384);
    r.text = p2.data;
    r.text_len = p2.len;
    doc = encode(&enc, &r);
    CHECK(jstr(doc, "metadata.b") && strlen(jstr(doc, "metadata.b")) == 16376);
    cJSON_Delete(doc);
    wm_record_clear(&r);
    wm_entity_release(e2);
    wm_entity_release(sub);
}

static void test_wire_events(void) {
    wm_encoder enc;
    wm_encoder_init(&enc);
    wm_record r = {0};
    r.type = WM_REC_EVENT;
    r.text = strdup("{\n \"kind\": \"started\",\n \"x\": [1, 2]\n}");
    r.text_len = strlen(r.text);
    wm_buf out = {0};
    char err[200];
    CHECK(wm_encode_record(&enc, &r, &out, err, sizeof err) == 0);
    CHECK_STR(out.data, "{\"kind\":\"started\",\"x\":[1,2]}\n");
    wm_record_clear(&r);
    /* numbers stay exact (cJSON's printer would send 9.00719925474099e+15) */
    r.type = WM_REC_EVENT;
    r.text = strdup("{\"n\":9007199254740991,\"f\":0.1,\"e\":1e-7,\"m\":-2.5,\"u\":\"\\u00b5\"}");
    r.text_len = strlen(r.text);
    out.len = 0;
    CHECK(wm_encode_record(&enc, &r, &out, err, sizeof err) == 0);
    CHECK_STR(out.data, "{\"n\":9007199254740991,\"f\":0.1,\"e\":1e-07,\"m\":-2.5,\"u\":\"\xC2\xB5\"}\n");
    wm_record_clear(&r);
    r.type = WM_REC_EVENT;
    r.text = strdup("[1]");
    r.text_len = 3;
    out.len = 0;
    CHECK(wm_encode_record(&enc, &r, &out, err, sizeof err) == 1);
    CHECK_STR(err, "not a JSON object");
    CHECK(out.len == 0);
    wm_record_clear(&r);
    r.type = WM_REC_EVENT;
    r.text = strdup("{\"a\":");
    r.text_len = 5;
    CHECK(wm_encode_record(&enc, &r, &out, err, sizeof err) == 1);
    CHECK_STR(err, "not valid JSON");
    wm_record_clear(&r);
    wm_buf_free(&out);
}

int main(void) {
    test_lifecycle();
    test_subjob_failed_and_limits();
    test_wire_events();
    return test_result("test_encode");
}
