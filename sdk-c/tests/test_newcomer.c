/* What a newcomer reaches for first: a subjob without its own business key carries its
 * parent's (so a query by lot finds the wafers), and WAFERMON_CONSOLE=1 prints each event to
 * stderr as it is sent. Direct mode to a file tree: no server needed. */
#include "testing.h"
#include "wafermon.h"

/* Runs the jobs with stderr sent to a file; returns the file's text (malloc'd). */
static char *run_jobs(const char *root, char ids[4][300]) {
    char errpath[600];
    snprintf(errpath, sizeof errpath, "%s/stderr.txt", root);
    fflush(stderr);
    int saved = dup(2);
    int fd = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    REQUIRE(saved >= 0 && fd >= 0);
    dup2(fd, 2);
    close(fd);

    char why[512];
    wafermon_client *client = NULL;
    wafermon_status st = wafermon_client_new_from_env(&client, why, sizeof why);
    wafermon_app app = {.name = "wafer-process"};
    wafermon_job_options lot_opts = {.app = &app, .business_key = "LOT-7"};
    wafermon_job *lot = NULL, *w1 = NULL, *w2 = NULL, *plain = NULL;
    if (st == WAFERMON_OK) {
        wafermon_job_options w1_opts = {.app = &app, .sub_key = "w1"};
        wafermon_job_options w2_opts = {.app = &app, .business_key = "OWN"};
        wafermon_job_options plain_opts = {.app = &app};
        REQUIRE(wafermon_job_start(client, &lot_opts, &lot, why, sizeof why) == WAFERMON_OK);
        REQUIRE(wafermon_subjob_start(lot, &w1_opts, &w1, why, sizeof why) == WAFERMON_OK);
        REQUIRE(wafermon_subjob_start(lot, &w2_opts, &w2, why, sizeof why) == WAFERMON_OK);
        REQUIRE(wafermon_job_start(client, &plain_opts, &plain, why, sizeof why) == WAFERMON_OK);
        snprintf(ids[0], 300, "%s", wafermon_job_id(lot));
        snprintf(ids[1], 300, "%s", wafermon_job_id(w1));
        snprintf(ids[2], 300, "%s", wafermon_job_id(w2));
        snprintf(ids[3], 300, "%s", wafermon_job_id(plain));
        wafermon_job_finish(w1);
        wafermon_job_finish(w2);
        wafermon_job_finish(lot);
        wafermon_job_finish(plain);
        st = wafermon_client_close(client, 10);
    }
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    if (st != WAFERMON_OK)
        fprintf(stderr, "client: %s %s\n", wafermon_status_str(st), why);
    REQUIRE(st == WAFERMON_OK);

    FILE *f = fopen(errpath, "r");
    REQUIRE(f != NULL);
    static char text[1 << 16];
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    return strdup(text);
}

static const char *key_of(cJSON *events, const char *id) {
    cJSON *e;
    cJSON_ArrayForEach(e, events) {
        const char *eid = jstr(e, "entity.id");
        if (eid && strcmp(eid, id) == 0)
            return jstr(e, "entity.business_key");
    }
    return "(no event)";
}

int main(void) {
    char *root = make_temp_dir();
    char url[700], ids[4][300];
    snprintf(url, sizeof url, "file://%s/events", root);

    clear_wafermon_env();
    setenv("WAFERMON_MODE", "direct", 1);
    setenv("WAFERMON_DIRECT_URL", url, 1);
    setenv("WAFERMON_SITE_ID", "fab1", 1);
    setenv("WAFERMON_SPOOL_DIR", root, 1);
    setenv("WAFERMON_CONSOLE", "1", 1);
    char *printed = run_jobs(root, ids);

    /* Console mode: one "send" line per event, each the wire JSON that was stored. */
    cJSON *sent = cJSON_CreateArray();
    int lines = 0;
    for (char *line = strtok(printed, "\n"); line; line = strtok(NULL, "\n")) {
        const char *prefix = "wafermon-sdk-c: send ";
        if (strncmp(line, prefix, strlen(prefix)) != 0)
            continue;
        cJSON *doc = cJSON_Parse(line + strlen(prefix));
        CHECK(doc != NULL);
        if (doc)
            cJSON_AddItemToArray(sent, doc);
        lines++;
    }
    CHECK(lines == 8); /* started + finished for each of the four */
    char events_dir[700];
    snprintf(events_dir, sizeof events_dir, "%s/events", root);
    cJSON *stored = cJSON_CreateArray();
    collect_jsonl(events_dir, stored);
    CHECK(cJSON_GetArraySize(stored) == 8);
    cJSON *e;
    cJSON_ArrayForEach(e, sent) {
        cJSON *same = find_event(stored, "event_id", jstr(e, "event_id"));
        CHECK(same != NULL && cJSON_Compare(same, e, 1));
    }

    /* Business keys: inherited by a subjob without one, kept when given, none for a plain job. */
    CHECK_STR(key_of(stored, ids[0]), "LOT-7");
    CHECK_STR(key_of(stored, ids[1]), "LOT-7");
    CHECK_STR(key_of(stored, ids[2]), "OWN");
    CHECK(key_of(stored, ids[3]) == NULL);
    cJSON_Delete(sent);
    cJSON_Delete(stored);
    free(printed);

    /* Off by default: nothing printed. */
    unsetenv("WAFERMON_CONSOLE");
    printed = run_jobs(root, ids);
    CHECK(strstr(printed, "wafermon-sdk-c: send") == NULL);
    free(printed);

    /* A bad value is a config error naming the variable. */
    setenv("WAFERMON_CONSOLE", "maybe", 1);
    char why[512];
    wafermon_client *client = NULL;
    CHECK(wafermon_client_new_from_env(&client, why, sizeof why) == WAFERMON_ERR_CONFIG);
    CHECK(strstr(why, "WAFERMON_CONSOLE") != NULL);

    remove_tree(root);
    free(root);
    return test_result("test_newcomer");
}
