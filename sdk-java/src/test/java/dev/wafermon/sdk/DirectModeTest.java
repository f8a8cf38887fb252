package dev.wafermon.sdk;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.LocalDate;
import java.time.ZoneOffset;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Direct mode to a folder: the filesystem backend's layout, ROOT/{site}/{UTC date}/events.jsonl. */
class DirectModeTest {
    @Test
    void eventsLandInTheFilesystemBackendsLayout(@TempDir Path tmp) throws Exception {
        Path root = tmp.resolve("events");
        try (WafermonClient client = WafermonClient.builder().environment(Map.of(
                "WAFERMON_MODE", "direct", "WAFERMON_DIRECT_URL", root.toUri().toString(),
                "WAFERMON_SITE_ID", "fab1", "WAFERMON_SPOOL_DIR", tmp.resolve("spool").toString(),
                "WAFERMON_FLUSH_INTERVAL", "20ms")).shutdownHook(false).build()) {
            try (Monitored job = client.startJob(App.of("direct"), "LOT-D")) {
                job.subjob().subKey("w1").start().finish();
                job.finish();
            }
            Map<String, Object> other = new LinkedHashMap<>(Map.of("schema_version", 1,
                    "event_id", "9e0f1a2b-3c4d-4e5f-8a71-829304152637", "kind", "started",
                    "time", "2026-11-27T23:30:00-02:00", "site_id", "fab2",
                    "app", Map.of("name", "x"), "entity", Map.of("type", "job", "id", "j1")));
            assertTrue(client.emitEvent(other));
            assertTrue(client.flush(Duration.ofSeconds(10)));
        }
        String today = LocalDate.now(ZoneOffset.UTC).toString();
        List<String> mine = Files.readAllLines(root.resolve("fab1").resolve(today).resolve("events.jsonl"));
        assertEquals(4, mine.size());
        for (String line : mine) {
            JsonNode e = RealSidecar.JSON.readTree(line);
            assertEquals("fab1", e.get("site_id").asText());
        }
        // 23:30 at -02:00 is 01:30 UTC on the next day
        List<String> theirs = Files.readAllLines(root.resolve("fab2").resolve("2026-11-28").resolve("events.jsonl"));
        assertEquals(1, theirs.size());
        assertEquals("9e0f1a2b-3c4d-4e5f-8a71-829304152637", RealSidecar.JSON.readTree(theirs.get(0)).get("event_id").asText());
    }
}
