/*
 * encode.c - queue records into wire events (NDJSON lines), on the sender thread only.
 *
 * A lifecycle record carries raw fields (entity, clock readings, figures, a metadata patch);
 * here it gets its event_id, its RFC 3339 time and its JSON. The parts every event of one
 * job shares (site, app, entity, source) are encoded once per job and reused. Metadata above
 * WAFERMON_METADATA_MAX_BYTES of compact JSON is replaced by a note saying so, and the event
 * is still sent. Events handed over in wire form are checked to be one JSON object and
 * compacted onto one line; the sidecar validates them against the schema.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ERROR_TYPE_MAX 256
#define ERROR_MESSAGE_MAX 8192
#define ERROR_STACK_MAX 65536

static const char *const KIND_NAMES[] = {"started", "progress", "finished", "failed"};

void wm_encoder_init(wm_encoder *enc) {
    memset(enc, 0, sizeof *enc);
    wm_idgen_init(&enc->ids);
    if (gethostname(enc->host, sizeof enc->host - 1) != 0)
        enc->host[0] = '\0';
    enc->host[sizeof enc->host - 1] = '\0';
    enc->pid = (long)getpid();
}

void wm_entity_release(wm_entity *e) {
    if (!e || atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel) != 1)
        return;
    free(e->site_id);
    free(e->app_name);
    free(e->app_version);
    free(e->app_id);
    free(e->parent_id);
    free(e->business_key);
    free(e->sub_key);
    free(e->initial_metadata);
    free(e->head_json);
    cJSON_Delete(e->metadata);
    free(e);
}

void wm_record_clear(wm_record *r) {
    wm_entity_release(r->entity);
    free(r->text);
    free(r->error);
    memset(r, 0, sizeof *r);
}

static int json_field(wm_buf *b, const char *name, const char *value) {
    if (!value)
        return 0;
    return wm_buf_printf(b, ",\"%s\":", name) || wm_buf_json_string(b, value, strlen(value));
}

static int build_head(wm_encoder *enc, wm_entity *e) {
    wm_buf b = {0};
    int rc = wm_buf_puts(&b, "\"schema_version\":1,\"site_id\":") ||
             wm_buf_json_string(&b, e->site_id, strlen(e->site_id)) ||
             wm_buf_puts(&b, ",\"app\":{\"name\":") ||
             wm_buf_json_string(&b, e->app_name, strlen(e->app_name)) ||
             json_field(&b, "version", e->app_version) || json_field(&b, "app_id", e->app_id) ||
             wm_buf_puts(&b, "},\"entity\":{\"type\":") ||
             wm_buf_puts(&b, e->is_subjob ? "\"subjob\",\"id\":" : "\"job\",\"id\":") ||
             wm_buf_json_string(&b, e->id, strlen(e->id)) ||
             json_field(&b, "parent_id", e->parent_id) ||
             json_field(&b, "business_key", e->business_key) ||
             json_field(&b, "sub_key", e->sub_key) || wm_buf_puts(&b, "},\"source\":{\"host\":") ||
             wm_buf_json_string(&b, enc->host, strlen(enc->host)) ||
             wm_buf_printf(&b, ",\"pid\":%ld,\"sdk\":\"%s\",\"sdk_version\":\"%s\"}", enc->pid,
                           WAFERMON_SDK_NAME, WAFERMON_VERSION);
    if (rc) {
        wm_buf_free(&b);
        return -1;
    }
    e->head_json = b.data;
    return 0;
}

/* Merge a JSON object patch into the entity's metadata (top-level keys replace). */
static int merge_metadata(wm_entity *e, const char *patch_text, size_t len) {
    cJSON *patch = cJSON_ParseWithLength(patch_text, len);
    if (!cJSON_IsObject(patch)) { /* checked on the caller's thread already */
        cJSON_Delete(patch);
        return 0;
    }
    if (!e->metadata)
        e->metadata = cJSON_CreateObject();
    if (!e->metadata) {
        cJSON_Delete(patch);
        return -1;
    }
    cJSON *item = patch->child;
    while (item) {
        cJSON *next = item->next;
        cJSON_DetachItemViaPointer(patch, item);
        cJSON *old = cJSON_GetObjectItemCaseSensitive(e->metadata, item->string);
        if (old) /* (cJSON_ReplaceItemInObject would free the key it is given first) */
            cJSON_ReplaceItemViaPointer(e->metadata, old, item);
        else
            cJSON_AddItemToObject(e->metadata, item->string, item);
        item = next;
    }
    cJSON_Delete(patch);
    return 0;
}

/* Copy at most max bytes of s as a JSON string, not cutting a UTF-8 sequence. */
static int json_string_cut(wm_buf *b, const char *s, size_t max, int keep_end) {
    size_t n = strlen(s);
    if (n <= max)
        return wm_buf_json_string(b, s, n);
    if (keep_end) { /* a stack keeps its end, where the failure is */
        const char *start = s + n - (max - 4);
        while ((*start & 0xC0) == 0x80)
            start++;
        wm_buf tmp = {0};
        int rc = wm_buf_puts(&tmp, "...\n") || wm_buf_puts(&tmp, start) ||
                 wm_buf_json_string(b, tmp.data, tmp.len);
        wm_buf_free(&tmp);
        return rc;
    }
    size_t cut = max;
    while (cut > 0 && (s[cut] & 0xC0) == 0x80)
        cut--;
    return wm_buf_json_string(b, s, cut);
}

static int encode_lifecycle(wm_encoder *enc, wm_record *r, wm_buf *out) {
    wm_entity *e = r->entity;
    if (!e->head_json && build_head(enc, e))
        return -1;
    if (!e->metadata_ready) {
        e->metadata_ready = 1;
        if (e->initial_metadata && merge_metadata(e, e->initial_metadata,
                                                  strlen(e->initial_metadata)))
            return -1;
    }
    if (r->text && merge_metadata(e, r->text, r->text_len))
        return -1;

    char id[37], when[32];
    if (wm_uuid7(&enc->ids, wm_realtime_ns(), id))
        return -1;
    wm_format_time(r->time_ns, when);
    if (wm_buf_printf(out, "{\"event_id\":\"%s\",\"kind\":\"%s\",\"time\":\"%s\",%s", id,
                      KIND_NAMES[r->kind], when, e->head_json))
        return -1;
    if (r->has_metrics || r->has_progress) {
        int first = 1;
        if (wm_buf_puts(out, ",\"metrics\":{"))
            return -1;
        if (r->has_metrics) {
            if (wm_buf_puts(out, "\"duration_s\":") || wm_buf_json_number(out, r->duration_s))
                return -1;
            first = 0;
            if (r->kind == WM_KIND_FINISHED || r->kind == WM_KIND_FAILED) {
                if (wm_buf_puts(out, ",\"cpu_user_s\":") ||
                    wm_buf_json_number(out, r->cpu_user_s) ||
                    wm_buf_puts(out, ",\"cpu_system_s\":") ||
                    wm_buf_json_number(out, r->cpu_system_s) ||
                    wm_buf_puts(out, ",\"mem_max_mb\":") || wm_buf_json_number(out, r->mem_max_mb))
                    return -1;
            }
        }
        if (r->has_progress) {
            double p = r->progress > 1 ? 1 : r->progress;
            if (wm_buf_puts(out, first ? "\"progress\":" : ",\"progress\":") ||
                wm_buf_json_number(out, p))
                return -1;
        }
        if (wm_buf_puts(out, "}"))
            return -1;
    }
    if (e->metadata && e->metadata->child) {
        wm_buf meta = {0};
        if (wm_buf_json_value(&meta, e->metadata)) {
            wm_buf_free(&meta);
            return -1;
        }
        size_t size = meta.len;
        int rc;
        if (size > WAFERMON_METADATA_MAX_BYTES) {
            enc->metadata_truncated++;
            rc = wm_buf_printf(out,
                               ",\"metadata\":{\"wafermon_sdk_truncated\":\"metadata of %zu bytes "
                               "was above the %d-byte cap and was dropped\"}",
                               size, WAFERMON_METADATA_MAX_BYTES);
        } else {
            rc = wm_buf_puts(out, ",\"metadata\":") || wm_buf_append(out, meta.data, size);
        }
        wm_buf_free(&meta);
        if (rc)
            return -1;
    }
    if (r->kind == WM_KIND_FAILED && r->error) {
        const char *type = r->error;
        const char *message = type + strlen(type) + 1;
        const char *stack = message + strlen(message) + 1;
        if (wm_buf_puts(out, ",\"error\":{\"type\":") ||
            json_string_cut(out, type, ERROR_TYPE_MAX, 0) || wm_buf_puts(out, ",\"message\":") ||
            json_string_cut(out, message, ERROR_MESSAGE_MAX, 0))
            return -1;
        if (r->has_stack &&
            (wm_buf_puts(out, ",\"stack\":") || json_string_cut(out, stack, ERROR_STACK_MAX, 1)))
            return -1;
        if (wm_buf_puts(out, "}"))
            return -1;
    }
    return wm_buf_puts(out, "}\n");
}

static int encode_wire_event(wm_encoder *enc, wm_record *r, wm_buf *out, char *err,
                             size_t errlen) {
    cJSON *doc = cJSON_ParseWithLength(r->text, r->text_len);
    if (!cJSON_IsObject(doc)) {
        wm_format_error(err, errlen, "%s", doc ? "not a JSON object" : "not valid JSON");
        cJSON_Delete(doc);
        enc->invalid++;
        return 1;
    }
    int rc = wm_buf_json_value(out, doc) || wm_buf_puts(out, "\n");
    cJSON_Delete(doc);
    return rc ? -1 : 0;
}

int wm_encode_record(wm_encoder *enc, wm_record *r, wm_buf *out, char *err, size_t errlen) {
    size_t mark = out->len;
    int rc = r->type == WM_REC_EVENT ? encode_wire_event(enc, r, out, err, errlen)
                                     : encode_lifecycle(enc, r, out);
    if (rc) { /* leave no half line behind */
        out->len = mark;
        if (out->data)
            out->data[mark] = '\0';
    }
    return rc;
}
