package dev.wafermon.sdk;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SettingsTest {
    static Settings load(Map<String, String> env) {
        return Settings.load(null, env, Map.of());
    }

    @Test
    void defaultsAreTheSharedOnes() {
        Settings s = load(Map.of());
        assertEquals(Settings.Mode.SIDECAR, s.mode);
        assertEquals("http://127.0.0.1:17000", s.sidecarUrl);
        assertEquals(10_000, s.queueSize);
        assertEquals(500, s.batchSize);
        assertEquals(Duration.ofMillis(200), s.flushInterval);
        assertEquals(Duration.ofSeconds(10), s.timeout);
        assertEquals(5, s.maxRetries);
        assertEquals(Duration.ofMillis(200), s.retryBaseDelay);
        assertEquals(Duration.ofSeconds(30), s.retryMaxDelay);
        assertEquals(Duration.ofSeconds(1), s.replayInterval);
        assertEquals(Duration.ofSeconds(10), s.flushTimeout);
    }

    @Test
    void everyFaultIsListedUnderItsVariable() {
        WafermonConfigException e = assertThrows(WafermonConfigException.class, () -> load(Map.of(
                "WAFERMON_MODE", "sidcar", "WAFERMON_QUEUE_SIZE", "0", "WAFERMON_FLUSH_INTERVAL", "5 fortnights",
                "WAFERMON_SIDECAR_URL", "ftp://x", "WAFERMON_SITE_ID", "fab 1")));
        assertEquals(5, e.problems().size(), e.getMessage());
        assertTrue(e.getMessage().contains("WAFERMON_MODE: must be one of sidecar, direct, both, got 'sidcar'"));
        assertTrue(e.getMessage().contains("WAFERMON_QUEUE_SIZE: must be at least 1, got 0"));
        assertTrue(e.getMessage().contains("WAFERMON_FLUSH_INTERVAL: expected a duration"));
        assertTrue(e.getMessage().contains("WAFERMON_SIDECAR_URL: expected an http:// or https:// URL"));
        assertTrue(e.getMessage().contains("WAFERMON_SITE_ID: must be 1-64"));
    }

    @Test
    void theTokenIsNeverPrinted() {
        Settings s = load(Map.of("WAFERMON_TOKEN", "s3cr3t-token"));
        assertEquals("s3cr3t-token", s.token);
        assertFalse(s.toString().contains("s3cr3t"));
    }

    @Test
    void directModeNeedsATargetAndS3NeedsBothKeys() {
        WafermonConfigException e = assertThrows(WafermonConfigException.class,
                () -> load(Map.of("WAFERMON_MODE", "direct")));
        assertTrue(e.getMessage().startsWith("WAFERMON_DIRECT_URL: required"), e.getMessage());
        e = assertThrows(WafermonConfigException.class,
                () -> load(Map.of("WAFERMON_MODE", "direct", "WAFERMON_DIRECT_URL", "file:///a/../b")));
        assertTrue(e.getMessage().contains("without '..'"), e.getMessage());
        e = assertThrows(WafermonConfigException.class, () -> load(Map.of("WAFERMON_MODE", "both",
                "WAFERMON_DIRECT_URL", "s3://bucket/p", "AWS_ACCESS_KEY_ID", "AKIA")));
        assertEquals("AWS_SECRET_ACCESS_KEY: required with AWS_ACCESS_KEY_ID for an s3:// WAFERMON_DIRECT_URL", e.getMessage());
        e = assertThrows(WafermonConfigException.class,
                () -> load(Map.of("WAFERMON_MODE", "direct", "WAFERMON_DIRECT_URL", "s3://B_ad/p")));
        assertTrue(e.getMessage().contains("valid bucket name"), e.getMessage());
        Settings s3 = load(Map.of("WAFERMON_MODE", "direct", "WAFERMON_DIRECT_URL", "s3://lots/raw/fab/",
                "AWS_ACCESS_KEY_ID", "AKIA", "AWS_SECRET_ACCESS_KEY", "very-secret"));
        assertEquals("lots", s3.s3Bucket);
        assertEquals("raw/fab", s3.s3Prefix);
        assertFalse(s3.toString().contains("very-secret"));
        Settings s = load(Map.of("WAFERMON_MODE", "Both", "WAFERMON_DIRECT_URL", "file:///tmp/x"));
        assertEquals(Path.of("/tmp/x"), s.fileRoot);
        assertTrue(s.usesSidecar() && s.usesDirect());
    }

    @Test
    void fileThenEnvironmentThenBuilder(@TempDir Path tmp) throws Exception {
        Path yaml = tmp.resolve("sdk.yaml");
        Files.writeString(yaml, "# settings\nwafermon_sdk:\n  site_id: from-file  # comment\n"
                + "  batch_size: 7\n  queue_size: '33'\n  flush_interval: \"2s\"\n");
        Settings s = Settings.load(null, Map.of("WAFERMON_SDK_CONFIG", yaml.toString(), "WAFERMON_BATCH_SIZE", "9"),
                Map.of("queue_size", 44));
        assertEquals("from-file", s.siteId);
        assertEquals(9, s.batchSize, "the environment beats the file");
        assertEquals(44, s.queueSize, "the builder beats both");
        assertEquals(Duration.ofSeconds(2), s.flushInterval);

        Path json = tmp.resolve("sdk.json");
        Files.writeString(json, "{\"site_id\": \"fab-json\", \"max_retries\": 2, \"retry_base_delay\": \"50ms\"}");
        s = Settings.load(json, Map.of(), Map.of());
        assertEquals("fab-json", s.siteId);
        assertEquals(2, s.maxRetries);
        assertEquals(Duration.ofMillis(50), s.retryBaseDelay);
    }

    @Test
    void aBadFileNamesTheFileAndTheKey(@TempDir Path tmp) throws Exception {
        Path yaml = tmp.resolve("sdk.yaml");
        Files.writeString(yaml, "batch_size: many\nqueue_sise: 3\n");
        WafermonConfigException e = assertThrows(WafermonConfigException.class, () -> Settings.load(yaml, Map.of(), Map.of()));
        assertTrue(e.getMessage().contains(yaml + ": batch_size: expected an integer, got 'many'"), e.getMessage());
        assertTrue(e.getMessage().contains(yaml + ": queue_sise: unknown setting"), e.getMessage());
        Files.writeString(yaml, "backends: [a, b]\n");
        e = assertThrows(WafermonConfigException.class, () -> Settings.load(yaml, Map.of(), Map.of()));
        assertTrue(e.getMessage().contains("only plain scalar values"), e.getMessage());
    }

    @Test
    void durationsAndSizes() {
        assertEquals(Duration.ofMillis(500), Settings.parseDuration("500ms"));
        assertEquals(Duration.ofMinutes(5), Settings.parseDuration("5m"));
        assertEquals(Duration.ofSeconds(30), Settings.parseDuration("30"));
        assertEquals(Duration.ofDays(2), Settings.parseDuration(" 2 d "));
        assertEquals(64L << 20, Settings.parseSize("64MiB"));
        assertEquals(1_000_000_000L, Settings.parseSize("1GB"));
        assertThrows(IllegalArgumentException.class, () -> Settings.parseDuration("-1s"));
        assertThrows(IllegalArgumentException.class, () -> Settings.parseSize("lots"));
    }
}
