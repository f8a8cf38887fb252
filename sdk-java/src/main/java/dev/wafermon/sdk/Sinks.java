package dev.wafermon.sdk;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Where the sender delivers a batch. A sink makes one attempt and says "stored" (perhaps with
 * some events refused for good) or "unavailable" (with the server's Retry-After); retries,
 * backoff and the spool are the sender's business. Used from the sender thread only.
 */
final class Sinks {
    private Sinks() {}

    /** What one attempt did. */
    static final class Result {
        final boolean stored;
        final List<String> refusals; // "event_id: why", for the log
        final double retryAfter; // seconds, NaN when the server gave none
        final String error;
        final int done; // unavailable after a split: this many leading lines were stored

        private Result(boolean stored, List<String> refusals, double retryAfter, String error, int done) {
            this.stored = stored;
            this.refusals = refusals;
            this.retryAfter = retryAfter;
            this.error = error;
            this.done = done;
        }

        static Result stored(List<String> refusals) {
            return new Result(true, refusals, Double.NaN, null, 0);
        }

        static Result unavailable(String error, double retryAfter) {
            return new Result(false, List.of(), retryAfter, error, 0);
        }

        /** Unavailable, after the first {@code done} lines (with these refusals) were stored. */
        Result after(int stored, List<String> storedRefusals) {
            List<String> all = new ArrayList<>(storedRefusals);
            all.addAll(refusals);
            return new Result(false, all, retryAfter, error, stored + done);
        }
    }

    interface Sink {
        String name();

        Result send(List<Wire.Line> lines) throws InterruptedException;
    }

    /** Lines grouped by "{site_id}/{UTC date}" for the direct sinks; unplaceable ones refused. */
    static Map<String, List<Wire.Line>> byPlace(List<Wire.Line> lines, List<String> refused) {
        Map<String, List<Wire.Line>> groups = new LinkedHashMap<>();
        for (Wire.Line l : lines) {
            if (!l.place()) {
                refused.add(l.eventId() + ": no valid site_id and time to place it by");
                continue;
            }
            groups.computeIfAbsent(l.siteId + "/" + l.day, k -> new ArrayList<>()).add(l);
        }
        return groups;
    }

    /** The lines as one NDJSON body. */
    static byte[] concat(List<Wire.Line> lines) {
        int size = 0;
        for (Wire.Line l : lines) {
            size += l.bytes.length;
        }
        byte[] body = new byte[size];
        int at = 0;
        for (Wire.Line l : lines) {
            System.arraycopy(l.bytes, 0, body, at, l.bytes.length);
            at += l.bytes.length;
        }
        return body;
    }

    /**
     * POST {sidecar_url}/v1/ingest/events with an NDJSON body, over java.net.http. The
     * sidecar's answers, as the other SDKs read them: 202 with one result per event
     * ({@code rejected} ones refused for good); 400 with results; 413/422 split the batch in
     * halves down to single events; 503/429 with Retry-After, other 5xx, 401/403 (a token an
     * operator must fix: keep the events), 404/408/425 and network errors: unavailable.
     */
    static final class Sidecar implements Sink {
        static final String PATH = "/v1/ingest/events";
        private static final Set<Integer> RETRYABLE = Set.of(401, 403, 404, 408, 425, 429);
        private final HttpClient http;
        private final URI uri;
        private final String token;
        private final Duration timeout;

        Sidecar(Settings s) {
            this.uri = URI.create(s.sidecarUrl + PATH);
            this.token = s.token;
            this.timeout = s.timeout;
            this.http = HttpClient.newBuilder().connectTimeout(s.timeout)
                    .version(HttpClient.Version.HTTP_1_1).build();
        }

        @Override
        public String name() {
            return "sidecar";
        }

        @Override
        public Result send(List<Wire.Line> lines) throws InterruptedException {
            byte[] body = concat(lines);
            HttpRequest.Builder req = HttpRequest.newBuilder(uri).timeout(timeout)
                    .header("Content-Type", "application/x-ndjson")
                    .header("User-Agent", "wafermon-sdk-java/" + Wire.SDK_VERSION)
                    .POST(HttpRequest.BodyPublishers.ofByteArray(body));
            if (token != null) {
                req.header("Authorization", "Bearer " + token);
            }
            HttpResponse<byte[]> resp;
            try {
                resp = http.send(req.build(), HttpResponse.BodyHandlers.ofByteArray());
            } catch (IOException e) {
                return Result.unavailable("sidecar " + uri + " unreachable: " + e, Double.NaN);
            }
            int status = resp.statusCode();
            Map<String, Object> answer = parseObject(resp.body());
            if (status == 202 || (status == 400 && answer.get("results") instanceof List)) {
                return Result.stored(refusals(answer, lines));
            }
            if (status == 413 || status == 422) {
                if (lines.size() == 1) {
                    return Result.stored(List.of(lines.get(0).eventId() + ": the sidecar answered "
                            + status + ": " + reason(answer, resp)));
                }
                int half = lines.size() / 2;
                Result first = send(lines.subList(0, half));
                if (!first.stored) {
                    return first; // the first half is retried with the rest; receivers dedupe
                }
                Result second = send(lines.subList(half, lines.size()));
                if (!second.stored) {
                    return second.after(half, first.refusals); // only the rest is retried
                }
                List<String> all = new ArrayList<>(first.refusals);
                all.addAll(second.refusals);
                return Result.stored(all);
            }
            if (status >= 500 || RETRYABLE.contains(status)) {
                return Result.unavailable("sidecar answered " + status + ": " + reason(answer, resp),
                        retryAfter(resp.headers().firstValue("Retry-After").orElse(null)));
            }
            List<String> all = new ArrayList<>();
            for (Wire.Line l : lines) {
                all.add(l.eventId() + ": the sidecar answered " + status + ": " + reason(answer, resp));
            }
            return Result.stored(all);
        }

        private static Map<String, Object> parseObject(byte[] body) {
            try {
                Object v = Json.parse(body);
                if (v instanceof Map) {
                    @SuppressWarnings("unchecked")
                    Map<String, Object> m = (Map<String, Object>) v;
                    return m;
                }
            } catch (IllegalArgumentException e) {
                // not JSON: no results
            }
            return Map.of();
        }

        private static String reason(Map<String, Object> answer, HttpResponse<byte[]> resp) {
            Object error = answer.get("error");
            if (error != null) {
                String s = String.valueOf(error);
                return s.length() > 500 ? s.substring(0, 500) : s;
            }
            String text = new String(resp.body(), java.nio.charset.StandardCharsets.UTF_8);
            return text.length() > 200 ? text.substring(0, 200) : text;
        }

        private static List<String> refusals(Map<String, Object> answer, List<Wire.Line> lines) {
            Object rejected = answer.get("rejected");
            if (rejected instanceof Number && ((Number) rejected).longValue() == 0) {
                return List.of();
            }
            List<String> out = new ArrayList<>();
            Object results = answer.get("results");
            if (!(results instanceof List)) {
                return out;
            }
            for (Object r : (List<?>) results) {
                if (!(r instanceof Map) || !"rejected".equals(((Map<?, ?>) r).get("status"))) {
                    continue;
                }
                Object index = ((Map<?, ?>) r).get("index");
                String id = index instanceof Number && ((Number) index).intValue() < lines.size()
                        ? lines.get(((Number) index).intValue()).eventId() : null;
                out.add(id + ": " + Json.write(((Map<?, ?>) r).get("errors")));
            }
            return out;
        }

        /** Seconds from a Retry-After header (delta-seconds or an HTTP date), NaN if none. */
        static double retryAfter(String header) {
            if (header == null || header.isBlank()) {
                return Double.NaN;
            }
            try {
                return Math.max(0, Double.parseDouble(header.trim()));
            } catch (NumberFormatException e) {
                try {
                    ZonedDateTime at = ZonedDateTime.parse(header.trim(), DateTimeFormatter.RFC_1123_DATE_TIME);
                    return Math.max(0, Duration.between(ZonedDateTime.now(), at).toMillis() / 1000.0);
                } catch (RuntimeException e2) {
                    return Double.NaN;
                }
            }
        }
    }

    /**
     * Direct mode to a folder: appends each event to {@code ROOT/{site_id}/{UTC date}/events.jsonl},
     * the filesystem backend's layout (docs/backends/filesystem.md), as the C SDK does. Each
     * append is forced to disk before the batch counts as stored; a retry after a partial
     * append may write lines twice, which readers dedupe by event_id (at least once).
     */
    static final class FileTree implements Sink {
        private final Path root;

        FileTree(Path root) {
            this.root = root;
        }

        @Override
        public String name() {
            return "direct";
        }

        @Override
        public Result send(List<Wire.Line> lines) {
            List<String> refused = new ArrayList<>();
            for (Map.Entry<String, List<Wire.Line>> g : byPlace(lines, refused).entrySet()) {
                Path file = root.resolve(g.getKey()).resolve("events.jsonl");
                try {
                    Files.createDirectories(file.getParent());
                    try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE,
                            StandardOpenOption.WRITE, StandardOpenOption.APPEND)) {
                        for (Wire.Line l : g.getValue()) {
                            ByteBuffer b = ByteBuffer.wrap(l.bytes);
                            while (b.hasRemaining()) {
                                ch.write(b);
                            }
                        }
                        ch.force(true);
                    }
                } catch (IOException e) {
                    return Result.unavailable("cannot append to " + file + ": " + e, Double.NaN);
                }
            }
            return Result.stored(refused);
        }
    }
}
