package dev.wafermon.sdk;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;

import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.time.LocalDate;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import software.amazon.awssdk.auth.credentials.AwsBasicCredentials;
import software.amazon.awssdk.auth.credentials.StaticCredentialsProvider;
import software.amazon.awssdk.core.checksums.RequestChecksumCalculation;
import software.amazon.awssdk.http.urlconnection.UrlConnectionHttpClient;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.services.s3.S3Client;
import software.amazon.awssdk.services.s3.model.S3Object;

/**
 * Direct mode to S3 against the REAL SeaweedFS that {@code scripts/services start s3} runs
 * (auth on): objects are read back and their events checked; a wrong secret keeps the events
 * in the spool, and the right one delivers them. Needs WAFERMON_TEST_S3_ENDPOINT and its keys
 * ({@code eval "$(scripts/services start s3)"}); without them the test fails, it never skips.
 */
class S3Test {
    static String env(String name) {
        String v = System.getenv(name);
        if (v == null || v.isBlank()) {
            throw new AssertionError(name + " is not set: eval \"$(scripts/services start s3)\" first");
        }
        return v;
    }

    @Test
    void batchesBecomeObjectsAndAWrongSecretKeepsTheEvents(@TempDir Path tmp) throws Exception {
        String endpoint = env("WAFERMON_TEST_S3_ENDPOINT");
        String key = env("WAFERMON_TEST_S3_ACCESS_KEY_ID");
        String secret = env("WAFERMON_TEST_S3_SECRET_ACCESS_KEY");
        S3Client s3 = S3Client.builder().endpointOverride(URI.create(endpoint)).region(Region.US_EAST_1)
                .forcePathStyle(true).httpClient(UrlConnectionHttpClient.create())
                .requestChecksumCalculation(RequestChecksumCalculation.WHEN_REQUIRED)
                .credentialsProvider(StaticCredentialsProvider.create(AwsBasicCredentials.create(key, secret))).build();
        String bucket = "wafermon-java-" + Ids.uuid4().substring(0, 8);
        s3.createBucket(b -> b.bucket(bucket));

        Map<String, String> vars = new HashMap<>(Map.of("WAFERMON_MODE", "direct",
                "WAFERMON_DIRECT_URL", "s3://" + bucket + "/raw/java-sdk", "WAFERMON_S3_ENDPOINT", endpoint,
                "WAFERMON_SITE_ID", "fab1", "WAFERMON_SPOOL_DIR", tmp.resolve("spool").toString(),
                "WAFERMON_FLUSH_INTERVAL", "20ms", "WAFERMON_MAX_RETRIES", "0",
                "AWS_ACCESS_KEY_ID", key, "AWS_SECRET_ACCESS_KEY", "not-the-secret"));
        String first;
        try (WafermonClient wrong = WafermonClient.builder().environment(vars).shutdownHook(false).build()) {
            try (Monitored job = wrong.startJob(App.of("s3-test"), "LOT-S3-A")) {
                first = job.id();
                job.finish();
            }
            assertFalse(wrong.flush(Duration.ofSeconds(10)), "a refused signature is not 'stored'");
            assertTrue(wrong.stats().spooled() >= 2);
            assertTrue(wrong.stats().lastError().contains("S3 PUT"), wrong.stats().lastError());
        }
        vars.put("AWS_SECRET_ACCESS_KEY", secret);
        String second;
        try (WafermonClient right = WafermonClient.builder().environment(vars).shutdownHook(false).build()) {
            try (Monitored job = right.startJob(App.of("s3-test"), "LOT-S3-B")) {
                second = job.id();
                job.progress(0.5, Map.of("note", "é"));
                job.finish();
            }
            assertTrue(right.flush(Duration.ofSeconds(20)), "the spool of the first client and the new events");
            assertEquals(0, right.stats().spoolFiles());
        }
        String day = LocalDate.now(ZoneOffset.UTC).toString();
        String prefix = "raw/java-sdk/fab1/" + day + "/";
        List<S3Object> objects = s3.listObjectsV2(b -> b.bucket(bucket).prefix(prefix)).contents();
        assertFalse(objects.isEmpty());
        List<JsonNode> events = new ArrayList<>();
        for (S3Object o : objects) {
            assertTrue(o.key().matches("raw/java-sdk/fab1/\\d{4}-\\d\\d-\\d\\d/\\d{8}T\\d{12}Z-[0-9a-f]{8}\\.jsonl"), o.key());
            String body = s3.getObjectAsBytes(b -> b.bucket(bucket).key(o.key())).asString(StandardCharsets.UTF_8);
            for (String line : body.split("\n")) {
                events.add(RealSidecar.JSON.readTree(line));
            }
        }
        assertEquals(2, events.stream().filter(e -> e.at("/entity/id").asText().equals(first)).count());
        assertEquals(3, events.stream().filter(e -> e.at("/entity/id").asText().equals(second)).count());
        assertTrue(events.stream().anyMatch(e -> "é".equals(e.at("/metadata/note").asText())));
    }
}
