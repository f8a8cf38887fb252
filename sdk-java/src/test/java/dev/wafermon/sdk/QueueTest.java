package dev.wafermon.sdk;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The queue's bounds with a sender that cannot empty it: a 1-hour flush interval and batches
 * larger than the queue, towards a port nothing listens on.
 */
class QueueTest {
    static WafermonClient stuck(Path spool, int queueSize) {
        return WafermonClient.builder().environment(Map.of()).siteId("fab1")
                .sidecarUrl("http://127.0.0.1:" + RealSidecar.freePort()).spoolDir(spool)
                .queueSize(queueSize).batchSize(1000).flushInterval(Duration.ofHours(1))
                .replayInterval(Duration.ofHours(1)).maxRetries(0)
                .set("block_timeout", "10ms").shutdownHook(false).build();
    }

    static long spooledLines(Path spool) throws Exception {
        try (Stream<Path> files = Files.walk(spool)) {
            long n = 0;
            for (Path f : (Iterable<Path>) files.filter(p -> p.toString().endsWith(".ndjson"))::iterator) {
                n += Files.readAllLines(f).size();
            }
            return n;
        }
    }

    @Test
    void progressIsShedBeforeLifecycleEventsAndNothingElseIsLost(@TempDir Path tmp) throws Exception {
        WafermonClient client = stuck(tmp.resolve("spool"), 4);
        Monitored job = client.startJob(App.of("q"), "LOT-Q"); // 1 queued
        job.progress(0.1);
        job.progress(0.2);
        job.progress(0.3); // 4 queued: full
        job.progress(0.4); // shed
        assertEquals(1, client.stats().shed());
        assertEquals(4, client.stats().queued());
        Monitored second = client.startJob(App.of("q"), "LOT-R"); // evicts the oldest progress tick
        assertEquals(2, client.stats().shed());
        assertEquals(4, client.stats().queued());
        second.finish(); // evicts another
        job.finish(); // evicts the last one
        assertEquals(4, client.stats().shed());
        Monitored third = client.startJob(App.of("q"), "LOT-S"); // nothing to evict: the spool takes it
        assertEquals(1, client.stats().spooled());
        assertEquals(1, spooledLines(tmp.resolve("spool")));
        client.close(Duration.ofSeconds(5));
        // started x3, finished x2: every lifecycle event was sent or spooled, none lost
        assertEquals(5, spooledLines(tmp.resolve("spool")));
        assertEquals(0, client.stats().lost());
        assertThrows(IllegalStateException.class, third::finish, "a closed client takes nothing");
    }

    @Test
    void theQueueIsBoundedInBytes(@TempDir Path tmp) {
        WafermonClient client = WafermonClient.builder().environment(Map.of()).siteId("fab1")
                .sidecarUrl("http://127.0.0.1:" + RealSidecar.freePort()).spoolDir(tmp)
                .queueMaxBytes(64 << 10).batchSize(1000).maxRetries(0).flushInterval(Duration.ofHours(1))
                .replayInterval(Duration.ofHours(1)).shutdownHook(false).build();
        Monitored job = client.startJob(App.of("q"), "LOT-B");
        String blob = "x".repeat(8000);
        for (int i = 0; i < 20; i++) {
            job.progress(Map.of("blob", blob + i)); // about 8 KB each
        }
        WafermonClient.Stats s = client.stats();
        assertTrue(s.queuedBytes() <= 64 << 10, "queued " + s.queuedBytes());
        assertTrue(s.shed() > 0);
        assertTrue(s.queued() < 21);
        client.close(Duration.ofSeconds(5));
    }

    @Test
    void metadataAboveTheCapIsReplacedByANote(@TempDir Path tmp) throws Exception {
        WafermonClient client = stuck(tmp.resolve("spool"), 100);
        String atCap = "x".repeat(16384 - "{\"blob\":\"\"}".length());
        Monitored a = client.startJob(App.of("q"), "A");
        a.progress(Map.of("blob", atCap)); // replaces the key: exactly 16384 bytes
        Monitored b = client.startJob(App.of("q"), "B");
        b.progress(Map.of("blob", atCap + "y")); // 16385 bytes
        assertEquals(1, client.stats().metadataTruncated());
        client.close(Duration.ofSeconds(5));
        List<String> lines = new ArrayList<>();
        try (Stream<Path> files = Files.walk(tmp.resolve("spool"))) {
            for (Path f : (Iterable<Path>) files.filter(p -> p.toString().endsWith(".ndjson"))::iterator) {
                lines.addAll(Files.readAllLines(f));
            }
        }
        assertTrue(lines.stream().anyMatch(l -> l.contains(atCap + "\"")));
        assertTrue(lines.stream().anyMatch(l -> l.contains("\"wafermon_sdk_truncated\":\"metadata of 16385 bytes")));
    }

    @Test
    void invalidWireEventsNameTheFieldAndTheValidOnesAreKept(@TempDir Path tmp) {
        WafermonClient client = stuck(tmp, 100);
        Map<String, Object> good = new java.util.LinkedHashMap<>(Map.of("schema_version", 1,
                "event_id", "0b7e1f5c-3c1a-4d2e-9f60-2a8c5e4b7d10", "kind", "started",
                "time", "2026-11-27T23:59:59.5+01:00", "site_id", "fab1",
                "app", Map.of("name", "x"), "entity", Map.of("type", "job", "id", "j1")));
        Map<String, Object> bad = new java.util.LinkedHashMap<>(good);
        bad.put("kind", "finshed");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> client.emitEvent(bad));
        assertEquals("kind: must be one of started, progress, finished, failed, got 'finshed'", e.getMessage());
        assertEquals(2, client.emitBatch(List.of(good, bad, good)));
        assertEquals(1, client.stats().invalid());
        assertTrue(client.emitEvent(Json.write(good)));
        assertFalse(client.flush(Duration.ofMillis(100)));
        client.close(Duration.ofSeconds(5));
    }

    @Test
    void wireTimesAreCheckedWithoutParsing() {
        for (String ok : List.of("2026-11-28T08:00:00Z", "2026-11-28T08:00:00.5Z", "2026-11-28t08:00:00.123456789z",
                "2026-11-27T23:30:00-02:00", "2026-11-27T23:30:00.1+05:30")) {
            assertTrue(WafermonClient.isRfc3339(ok), ok);
        }
        for (String bad : List.of("2026-11-28 08:00:00Z", "2026-11-28T08:00:00", "2026-13-28T08:00:00Z",
                "2026-11-28T08:00:00.Z", "2026-11-28T08:00:00+0200", "yesterday", "2026-11-28T25:00:00Z")) {
            assertFalse(WafermonClient.isRfc3339(bad), bad);
        }
    }

    /**
     * A full queue of lifecycle events while the destination fails with long backoffs: the
     * sender spools its batch instead of sleeping, so callers get room, and the spool holds
     * every event in the order it was made (the caller's thread never had to spool one).
     */
    @Test
    @org.junit.jupiter.api.Timeout(60) // the old sender slept through 20 s backoffs while callers waited
    void waitingCallersMakeTheSenderSpoolInsteadOfBackingOff(@TempDir Path tmp) throws Exception {
        WafermonClient client = WafermonClient.builder().environment(Map.of()).siteId("fab1")
                .sidecarUrl("http://127.0.0.1:" + RealSidecar.freePort()).spoolDir(tmp.resolve("spool"))
                .queueSize(4).batchSize(2).flushInterval(Duration.ofMillis(5)).maxRetries(10)
                .retryDelays(Duration.ofSeconds(20), Duration.ofSeconds(60)).replayInterval(Duration.ofHours(1))
                .set("block_timeout", "20s").shutdownHook(false).build();
        for (int i = 0; i < 30; i++) {
            client.startJob(App.of("q"), "LOT-" + i);
        }
        client.close(Duration.ofSeconds(5));
        List<String> keys = new ArrayList<>();
        List<Path> files;
        try (Stream<Path> walk = Files.walk(tmp.resolve("spool"))) {
            files = walk.filter(p -> p.toString().endsWith(".ndjson")).sorted().collect(java.util.stream.Collectors.toList());
        }
        for (Path f : files) {
            for (String line : Files.readAllLines(f)) {
                keys.add(RealSidecar.JSON.readTree(line).at("/entity/business_key").asText());
            }
        }
        List<String> want = new ArrayList<>();
        for (int i = 0; i < 30; i++) {
            want.add("LOT-" + i);
        }
        assertEquals(want, keys, "every event, in order");
        assertEquals(0, client.stats().shed());
        assertEquals(0, client.stats().lost());
    }
}
