package dev.wafermon.sdk;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * End to end against the real {@code wafermon sidecar} (see {@link RealSidecar}): what the
 * SDK sends is accepted by the sidecar's codec and stored by the filesystem backend; outages,
 * restarts, Retry-After and a killed JVM lose nothing.
 */
class SidecarTest {
    static final App APP = App.of("wafer-test", "1.0");

    static WafermonClient.Builder client(String url, Path spool) {
        return WafermonClient.builder().environment(Map.of()).sidecarUrl(url).siteId("fab1")
                .spoolDir(spool).flushInterval(Duration.ofMillis(20)).shutdownHook(false);
    }

    static Set<String> ids(List<JsonNode> events) {
        return events.stream().map(e -> e.get("event_id").asText()).collect(Collectors.toSet());
    }

    @Test
    void aLotWithWafersReachesTheBackend(@TempDir Path tmp) throws Exception {
        try (RealSidecar sc = new RealSidecar(tmp, 0).start();
             WafermonClient client = client(sc.url(), tmp.resolve("spool")).build()) {
            String lotId;
            try (Monitored lot = client.job(APP).businessKey("LOT-7").metadata(Map.of("recipe", "etch-7")).start()) {
                lotId = lot.id();
                for (int slot = 1; slot <= 3; slot++) {
                    final int s = slot;
                    try (Monitored wafer = lot.subjob().subKey("wafer-" + slot).start()) {
                        Exception thrown = null;
                        try {
                            wafer.run(() -> {
                                wafer.progress(0.5, Map.of("step", "etch"));
                                if (s == 2) {
                                    throw new IllegalStateException("notch not found on wafer 2");
                                }
                            });
                        } catch (IllegalStateException e) {
                            thrown = e;
                        }
                        assertEquals(s == 2, thrown != null);
                    }
                    lot.progress(slot / 3.0, Map.of("wafers_done", slot));
                }
                lot.finish();
            }
            assertTrue(client.flush(Duration.ofSeconds(10)), "flush: everything delivered");
            List<JsonNode> events = sc.await(e -> true, 1 + 3 * 3 + 3 + 1, 20);
            assertEquals(14, events.size());
            assertEquals(14, ids(events).size(), "no event twice");
            long pid = ProcessHandle.current().pid();
            for (JsonNode e : events) {
                assertEquals("java", e.at("/source/sdk").asText());
                assertEquals(pid, e.at("/source/pid").asLong());
                assertEquals("fab1", e.get("site_id").asText());
                assertTrue(e.get("event_id").asText().matches("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"));
                assertTrue(e.get("time").asText().matches("\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{6}Z"));
            }
            JsonNode failed = events.stream().filter(e -> e.get("kind").asText().equals("failed")).findFirst().orElseThrow();
            assertEquals("java.lang.IllegalStateException", failed.at("/error/type").asText());
            assertEquals("notch not found on wafer 2", failed.at("/error/message").asText());
            assertTrue(failed.at("/error/stack").asText().contains("at dev.wafermon.sdk.SidecarTest"));
            assertEquals(lotId, failed.at("/entity/parent_id").asText());
            assertEquals("wafer-2", failed.at("/entity/sub_key").asText());
            for (String m : List.of("duration_s", "cpu_user_s", "cpu_system_s", "mem_max_mb")) {
                assertTrue(failed.at("/metrics/" + m).asDouble(-1) >= 0, m);
            }
            assertTrue(failed.at("/metrics/mem_max_mb").asDouble() > 0, "the JVM's peak memory is not 0");
            JsonNode lotEnd = events.stream().filter(e -> e.get("kind").asText().equals("finished")
                    && e.at("/entity/id").asText().equals(lotId)).findFirst().orElseThrow();
            assertEquals(3, lotEnd.at("/metadata/wafers_done").asInt());
            assertEquals("etch-7", lotEnd.at("/metadata/recipe").asText());
            assertEquals(0, client.stats().rejected());
        }
    }

    @Test
    void sidecarDownAtStartThenUpDeliversTheSpoolByItself(@TempDir Path tmp) throws Exception {
        RealSidecar sc = new RealSidecar(tmp, 0); // not started yet: connections are refused
        Path spool = tmp.resolve("spool");
        try (WafermonClient client = client(sc.url(), spool).maxRetries(1)
                .retryDelays(Duration.ofMillis(20), Duration.ofMillis(100))
                .replayInterval(Duration.ofMillis(200)).build()) {
            String id;
            try (Monitored job = client.startJob(APP, "LOT-DOWN")) {
                id = job.id();
                job.progress(0.5);
                job.finish();
            }
            assertFalse(client.flush(Duration.ofSeconds(5)), "nothing can be delivered while the sidecar is down");
            assertTrue(client.stats().spooled() >= 3);
            Path dir = spool.resolve("sidecar");
            assertEquals("rwx------", PosixFilePermissions.toString(Files.getPosixFilePermissions(dir)));
            try (Stream<Path> files = Files.list(dir)) {
                List<Path> list = files.collect(Collectors.toList());
                assertFalse(list.isEmpty());
                for (Path f : list) {
                    assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(f)));
                }
            }
            sc.start();
            try {
                List<JsonNode> events = sc.await(e -> e.at("/entity/id").asText().equals(id), 3, 20);
                assertEquals(3, ids(events).size());
                assertTrue(client.flush(Duration.ofSeconds(10)));
                assertEquals(0, client.stats().spoolFiles());
                assertTrue(client.stats().replayed() >= 3);
            } finally {
                sc.stop();
            }
        }
    }

    @Test
    void sidecarRestartMidRunLosesNothing(@TempDir Path tmp) throws Exception {
        try (RealSidecar sc = new RealSidecar(tmp, 0).start();
             WafermonClient client = client(sc.url(), tmp.resolve("spool")).maxRetries(2)
                     .retryDelays(Duration.ofMillis(20), Duration.ofMillis(200))
                     .replayInterval(Duration.ofMillis(200)).timeout(Duration.ofSeconds(2)).build()) {
            List<String> jobs = Collections.synchronizedList(new ArrayList<>());
            AtomicInteger failures = new AtomicInteger();
            List<Thread> threads = new ArrayList<>();
            for (int t = 0; t < 4; t++) {
                final int n = t;
                Thread th = new Thread(() -> {
                    for (int i = 0; i < 50; i++) {
                        try (Monitored job = client.startJob(APP, "LOT-" + n + "-" + i)) {
                            jobs.add(job.id());
                            job.progress(0.5);
                            job.finish();
                            Thread.sleep(10);
                        } catch (Exception e) {
                            failures.incrementAndGet();
                        }
                    }
                });
                th.start();
                threads.add(th);
            }
            Thread.sleep(300);
            sc.stop();
            Thread.sleep(700);
            sc.start();
            for (Thread th : threads) {
                th.join();
            }
            assertEquals(0, failures.get());
            assertTrue(client.flush(Duration.ofSeconds(30)), "delivered after the restart");
            Set<String> want = new HashSet<>(jobs);
            List<JsonNode> events = sc.await(e -> want.contains(e.at("/entity/id").asText()), 200 * 3, 30);
            assertEquals(600, ids(events).size(), "every event of every job, none lost");
        }
    }

    /** The first request is refused with 429 or 503 and Retry-After: 1 (by {@link RefusingProxy}). */
    @ParameterizedTest
    @ValueSource(ints = {429, 503})
    void retryAfterIsHonoured(int status, @TempDir Path tmp) throws Exception {
        try (RealSidecar sc = new RealSidecar(tmp, 0).start();
             RefusingProxy proxy = new RefusingProxy(sc.url(), n -> n == 0 ? status : 0);
             WafermonClient client = client(proxy.url(), tmp.resolve("spool"))
                     .retryDelays(Duration.ofMillis(20), Duration.ofSeconds(5)).build()) {
            String id;
            try (Monitored job = client.startJob(APP, "LOT-BUSY")) {
                id = job.id();
                job.finish();
            }
            assertTrue(client.flush(Duration.ofSeconds(15)));
            assertTrue(proxy.arrivals.size() >= 2);
            long gap = proxy.arrivals.get(1) - proxy.answered.get(0);
            assertTrue(gap >= TimeUnit.MILLISECONDS.toNanos(1000), "second request " + gap / 1e6 + " ms after the answer");
            assertEquals(2, sc.await(e -> e.at("/entity/id").asText().equals(id), 2, 20).size());
            assertTrue(client.stats().retries() >= 1);
        }
    }

    /**
     * 413 to a batch of four, then the second half is refused with 503: only that half is
     * sent again, so no event reaches the sidecar twice.
     */
    @Test
    void aSplitBatchRetriesOnlyWhatWasNotStored(@TempDir Path tmp) throws Exception {
        try (RealSidecar sc = new RealSidecar(tmp, 0).start();
             RefusingProxy proxy = new RefusingProxy(sc.url(), n -> n == 0 ? 413 : n == 2 ? 503 : 0);
             WafermonClient client = client(proxy.url(), tmp.resolve("spool")).flushInterval(Duration.ofMillis(300))
                     .retryDelays(Duration.ofMillis(20), Duration.ofSeconds(5)).build()) {
            String id;
            try (Monitored job = client.startJob(APP, "LOT-SPLIT")) {
                id = job.id();
                job.progress(0.3);
                job.progress(0.6);
                job.finish();
            }
            assertTrue(client.flush(Duration.ofSeconds(15)));
            assertEquals(4, proxy.bodies.get(0).split("\n").length, "one batch of four first");
            long forwarded = 0;
            for (int i = 1; i < proxy.bodies.size(); i++) {
                if (i != 2) {
                    forwarded += proxy.bodies.get(i).split("\n").length;
                }
            }
            assertEquals(4, forwarded, "each event forwarded once: " + proxy.bodies);
            assertEquals(4, sc.await(e -> e.at("/entity/id").asText().equals(id), 4, 20).size());
        }
    }

    /**
     * A child JVM spools while the sidecar is down and is killed with SIGKILL mid-run; the
     * next client on the same spool folder delivers what it spooled.
     */
    @Test
    void aKilledJvmsSpoolIsReplayedOnTheNextStart(@TempDir Path tmp) throws Exception {
        RealSidecar sc = new RealSidecar(tmp, 0);
        Path spool = tmp.resolve("spool");
        Path ready = tmp.resolve("ready.txt");
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        Process child = new ProcessBuilder(java, "-cp", System.getProperty("java.class.path"),
                KillChild.class.getName(), spool.toString(), sc.url(), ready.toString())
                .redirectErrorStream(true).redirectOutput(tmp.resolve("child.log").toFile()).start();
        try {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            while (!Files.exists(ready) && child.isAlive() && System.nanoTime() < deadline) {
                Thread.sleep(50);
            }
            assertTrue(Files.exists(ready), "the child reported its spooled jobs; log:\n"
                    + Files.readString(tmp.resolve("child.log")));
            Thread.sleep(200); // it is still emitting: kill it mid-run
        } finally {
            child.destroyForcibly(); // SIGKILL: no shutdown hook, no close
            child.waitFor();
        }
        assertEquals(137, child.exitValue());
        List<String> spooledJobs = Files.readAllLines(ready);
        assertEquals(50, spooledJobs.size());
        Set<String> want = new HashSet<>(spooledJobs);
        sc.start();
        try (WafermonClient client = client(sc.url(), spool).build()) {
            List<JsonNode> events = sc.await(e -> want.contains(e.at("/entity/id").asText()), 100, 30);
            assertEquals(100, ids(events).size());
            assertTrue(client.flush(Duration.ofSeconds(20)));
        } finally {
            sc.stop();
        }
    }

    /** A JVM that leaves main without close(): its shutdown hook flushes what was queued. */
    @Test
    void theShutdownHookDeliversWhatWasQueued(@TempDir Path tmp) throws Exception {
        try (RealSidecar sc = new RealSidecar(tmp, 0).start()) {
            String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
            Process child = new ProcessBuilder(java, "-cp", System.getProperty("java.class.path"),
                    KillChild.class.getName(), "--exit-without-close", sc.url(), tmp.resolve("spool").toString())
                    .redirectError(tmp.resolve("child.log").toFile()).start();
            String id = new String(child.getInputStream().readAllBytes()).trim();
            assertTrue(child.waitFor(60, TimeUnit.SECONDS));
            assertEquals(0, child.exitValue(), Files.readString(tmp.resolve("child.log")));
            // A 30 s flush interval and the child is gone: only its hook's flush sent them.
            assertEquals(3, sc.await(e -> e.at("/entity/id").asText().equals(id), 3, 20).size());
        }
    }

    /** Mode both: every event reaches the sidecar and the direct folder. */
    @Test
    void bothModeDeliversToTheSidecarAndTheFolder(@TempDir Path tmp) throws Exception {
        Path root = tmp.resolve("direct");
        try (RealSidecar sc = new RealSidecar(tmp, 0).start();
             WafermonClient client = client(sc.url(), tmp.resolve("spool")).mode(Settings.Mode.BOTH)
                     .directUrl(root.toUri().toString()).build()) {
            String id;
            try (Monitored job = client.startJob(APP, "LOT-BOTH")) {
                id = job.id();
                job.progress(0.5);
                job.finish();
            }
            assertTrue(client.flush(Duration.ofSeconds(10)));
            List<JsonNode> viaSidecar = sc.await(e -> e.at("/entity/id").asText().equals(id), 3, 20);
            List<String> inFolder;
            try (Stream<Path> files = Files.walk(root)) {
                inFolder = new ArrayList<>();
                for (Path f : (Iterable<Path>) files.filter(p -> p.toString().endsWith("events.jsonl"))::iterator) {
                    inFolder.addAll(Files.readAllLines(f));
                }
            }
            assertEquals(3, inFolder.size());
            Set<String> folderIds = new HashSet<>();
            for (String line : inFolder) {
                folderIds.add(RealSidecar.JSON.readTree(line).get("event_id").asText());
            }
            assertEquals(ids(viaSidecar), folderIds, "the same events, with the same ids, in both");
        }
    }

    @Test
    void aClosedClientRefusesNewEvents(@TempDir Path tmp) {
        WafermonClient client = client("http://127.0.0.1:" + RealSidecar.freePort(), tmp).maxRetries(0).build();
        client.close(Duration.ofSeconds(2));
        assertThrows(IllegalStateException.class, () -> client.startJob(APP, "LOT-LATE"));
    }
}
