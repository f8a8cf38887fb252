package dev.wafermon.sdk;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import java.util.stream.Stream;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * What a newcomer reaches for first (issue #21): a subjob without its own business key carries
 * its parent's, so a query by lot finds the wafers; console mode prints each event's wire JSON to
 * stderr as it is sent. Direct mode to a folder in the filesystem backend's layout: no server
 * needed.
 */
class NewcomerTest {
    private static final App APP = App.of("wafer-process");

    @Test
    void subjobsInheritTheParentsBusinessKeyUnlessGivenOne(@TempDir Path tmp) throws Exception {
        String[] ids = new String[5];
        run(tmp, Map.of(), client -> {
            try (Monitored lot = client.job(APP).businessKey("LOT-7").start()) {
                Monitored w1 = lot.subjob().subKey("w1").start();
                Monitored own = lot.subjob().businessKey("OWN").start();
                Monitored nested = w1.subjob().start(); // a subjob of a subjob: the lot's too
                ids[0] = w1.id();
                ids[1] = own.id();
                ids[2] = nested.id();
                nested.finish();
                own.finish();
                w1.finish();
                lot.finish();
            }
            try (Monitored keyless = client.job(APP).start()) {
                Monitored w = keyless.subjob().start();
                ids[3] = keyless.id();
                ids[4] = w.id();
                w.finish();
                keyless.finish();
            }
        });
        Map<String, String> keys = new HashMap<>();
        for (JsonNode e : events(tmp)) {
            JsonNode key = e.get("entity").get("business_key");
            keys.put(e.get("entity").get("id").asText(), key == null ? null : key.asText());
        }
        assertEquals("LOT-7", keys.get(ids[0]));
        assertEquals("OWN", keys.get(ids[1]));
        assertEquals("LOT-7", keys.get(ids[2]));
        assertTrue(keys.containsKey(ids[3]) && keys.containsKey(ids[4]));
        assertNull(keys.get(ids[3]));
        assertNull(keys.get(ids[4]));
    }

    @Test
    void consoleModePrintsEachEventAsSent(@TempDir Path tmp) throws Exception {
        String err = run(tmp, Map.of("WAFERMON_CONSOLE", "1"), client -> {
            try (Monitored job = client.job(APP).businessKey("LOT-9").start()) {
                job.progress(0.5);
                job.finish();
            }
        });
        List<JsonNode> printed = new ArrayList<>();
        for (String line : err.split("\n")) {
            if (line.startsWith(Sender.CONSOLE_PREFIX)) {
                printed.add(RealSidecar.JSON.readTree(line.substring(Sender.CONSOLE_PREFIX.length())));
            }
        }
        assertEquals(List.of("started", "progress", "finished"),
                printed.stream().map(e -> e.get("kind").asText()).toList());
        assertEquals(events(tmp), printed); // exactly what was sent
    }

    @Test
    void consoleModeIsOffByDefaultAndChecked(@TempDir Path tmp) throws Exception {
        String err = run(tmp, Map.of(), client -> client.job(APP).start().finish());
        assertEquals(2, events(tmp).size());
        assertFalse(err.contains(Sender.CONSOLE_PREFIX), err);
        // the builder's value wins over the variable
        err = run(tmp, Map.of("WAFERMON_CONSOLE", "true"), client -> client.job(APP).start().finish(),
                b -> b.console(false));
        assertFalse(err.contains(Sender.CONSOLE_PREFIX), err);
        WafermonConfigException bad = assertThrows(WafermonConfigException.class,
                () -> WafermonClient.builder().environment(Map.of("WAFERMON_CONSOLE", "maybe"))
                        .shutdownHook(false).build());
        assertTrue(bad.getMessage().contains("WAFERMON_CONSOLE: expected true or false, got 'maybe'"),
                bad.getMessage());
    }

    private interface Jobs {
        void run(WafermonClient client) throws Exception;
    }

    private static String run(Path tmp, Map<String, String> env, Jobs jobs) throws Exception {
        return run(tmp, env, jobs, b -> { });
    }

    /** Runs the jobs with a direct-mode client and returns what was written to stderr meanwhile. */
    private static String run(Path tmp, Map<String, String> env, Jobs jobs,
                              Consumer<WafermonClient.Builder> more) throws Exception {
        Map<String, String> all = new HashMap<>(Map.of("WAFERMON_MODE", "direct",
                "WAFERMON_DIRECT_URL", tmp.resolve("events").toUri().toString(),
                "WAFERMON_SITE_ID", "fab1", "WAFERMON_SPOOL_DIR", tmp.resolve("spool").toString(),
                "WAFERMON_FLUSH_INTERVAL", "20ms"));
        all.putAll(env);
        ByteArrayOutputStream captured = new ByteArrayOutputStream();
        PrintStream saved = System.err;
        System.setErr(new PrintStream(captured, true, StandardCharsets.UTF_8));
        try {
            WafermonClient.Builder b = WafermonClient.builder().environment(all).shutdownHook(false);
            more.accept(b);
            try (WafermonClient client = b.build()) {
                jobs.run(client);
                assertTrue(client.flush(Duration.ofSeconds(10)));
            }
        } finally {
            System.setErr(saved);
        }
        return captured.toString(StandardCharsets.UTF_8);
    }

    /** Every event stored under tmp/events, in file order. */
    private static List<JsonNode> events(Path tmp) throws Exception {
        List<JsonNode> out = new ArrayList<>();
        try (Stream<Path> files = Files.walk(tmp.resolve("events"))) {
            for (Path f : files.filter(p -> p.toString().endsWith(".jsonl")).sorted().toList()) {
                for (String line : Files.readAllLines(f)) {
                    out.add(RealSidecar.JSON.readTree(line));
                }
            }
        }
        return out;
    }
}
