/*
 * The Java SDK's benchmark program, run by bench/java_sdk_bench.py against a real sidecar
 * (WAFERMON_SIDECAR_URL, WAFERMON_SITE_ID, WAFERMON_SPOOL_DIR from the environment):
 *
 *   java -cp sdk-java/target/wafermon-sdk-0.1.0.jar sdk-java/bench/JavaBench.java \
 *       --calls 100000 --rounds 5 --throughput-events 50000
 *
 * Caller-thread cost: each call is timed on its own with System.nanoTime() (the timer's own
 * cost is in every figure, baseline too), after a warm-up round the JIT compiles in, while the
 * sender thread delivers to the sidecar. The baseline, timed the same way in the same run,
 * is ArrayBlockingQueue.offer of a freshly allocated object with the same fields as a progress
 * record (the least a thread-safe bounded hand-off does), drained by a consumer thread every
 * 200 ms as the SDK's sender drains its queue. Figures: median and p99 ns, median of rounds.
 *
 * Throughput: events/s from the first call until flush() says the sidecar acknowledged every
 * event; baseline: the same number of events POSTed by a plain java.net.http loop in batches
 * of 500 (one request at a time), i.e. what the sidecar itself takes from one client.
 * Prints one JSON object on stdout.
 */
import dev.wafermon.sdk.App;
import dev.wafermon.sdk.Json;
import dev.wafermon.sdk.Monitored;
import dev.wafermon.sdk.WafermonClient;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.ArrayBlockingQueue;

public final class JavaBench {
    /** What a progress record holds, for the baseline's offer. */
    record Record(Object head, String kind, long micros, double duration, double progress, byte[] metadata) {}

    static long[] percentiles(long[] ns) {
        long[] s = ns.clone();
        Arrays.sort(s);
        return new long[] {s[s.length / 2], s[(int) (s.length * 0.99)]};
    }

    static long median(List<Long> v) {
        List<Long> s = new ArrayList<>(v);
        s.sort(null);
        return s.get(s.size() / 2);
    }

    static volatile boolean draining = true;

    static long[] baselineRound(int calls, Object head, byte[] meta) throws Exception {
        ArrayBlockingQueue<Record> q = new ArrayBlockingQueue<>(calls + 10);
        draining = true;
        Thread consumer = new Thread(() -> {
            List<Record> sink = new ArrayList<>();
            while (draining) {
                try {
                    Thread.sleep(200);
                } catch (InterruptedException e) {
                    return;
                }
                q.drainTo(sink);
                sink.clear();
            }
        });
        consumer.start();
        long[] ns = new long[calls];
        long t0 = System.nanoTime();
        for (int i = 0; i < calls; i++) {
            long a = System.nanoTime();
            q.offer(new Record(head, "progress", Instant.now().getNano(), (a - t0) / 1e9, 0.5, meta));
            ns[i] = System.nanoTime() - a;
        }
        draining = false;
        consumer.join();
        return ns;
    }

    static long[] sdkRound(WafermonClient client, int calls) {
        long[] ns = new long[calls];
        try (Monitored job = client.job(App.of("bench", "1.0")).businessKey("LOT-BENCH")
                .metadata(Map.of("tool", "etch-07", "recipe", "POLY-ETCH-3")).start()) {
            for (int i = 0; i < calls; i++) {
                long a = System.nanoTime();
                job.progress(0.5);
                ns[i] = System.nanoTime() - a;
            }
            job.finish();
        }
        return ns;
    }

    static long[] emitRound(WafermonClient client, int calls, Map<String, Object> event) {
        long[] ns = new long[calls];
        for (int i = 0; i < calls; i++) {
            long a = System.nanoTime();
            client.emitEvent(event);
            ns[i] = System.nanoTime() - a;
        }
        return ns;
    }

    static Map<String, Object> wireEvent() {
        Map<String, Object> e = new LinkedHashMap<>();
        e.put("schema_version", 1);
        e.put("event_id", UUID.randomUUID().toString());
        e.put("kind", "progress");
        e.put("time", "2026-11-28T08:00:00.123456Z");
        e.put("site_id", "fab1");
        e.put("app", Map.of("name", "bench", "version", "1.0"));
        e.put("entity", Map.of("type", "job", "id", "bench-job", "business_key", "LOT-BENCH"));
        e.put("metrics", Map.of("duration_s", 1.5, "progress", 0.5));
        e.put("metadata", Map.of("tool", "etch-07", "recipe", "POLY-ETCH-3"));
        return e;
    }

    public static void main(String[] args) throws Exception {
        int calls = 100_000;
        int rounds = 5;
        int events = 50_000;
        for (int i = 0; i < args.length; i += 2) {
            switch (args[i]) {
                case "--calls": calls = Integer.parseInt(args[i + 1]); break;
                case "--rounds": rounds = Integer.parseInt(args[i + 1]); break;
                case "--throughput-events": events = Integer.parseInt(args[i + 1]); break;
                default: throw new IllegalArgumentException(args[i]);
            }
        }
        WafermonClient client = WafermonClient.builder().queueSize(2 * calls + 10)
                .queueMaxBytes(1L << 30).shutdownHook(false).build();
        byte[] meta = "{\"tool\":\"etch-07\",\"recipe\":\"POLY-ETCH-3\"}".getBytes(StandardCharsets.UTF_8);
        Object head = new Object();
        List<Long> sdkMed = new ArrayList<>();
        List<Long> sdkP99 = new ArrayList<>();
        List<Long> emitMed = new ArrayList<>();
        List<Long> emitP99 = new ArrayList<>();
        List<Long> baseMed = new ArrayList<>();
        List<Long> baseP99 = new ArrayList<>();
        Map<String, Object> event = wireEvent();
        for (int r = -1; r < rounds; r++) { // round -1: warm-up, not counted
            long[] b = percentiles(baselineRound(calls, head, meta));
            long[] s = percentiles(sdkRound(client, calls));
            long[] e = percentiles(emitRound(client, calls / 4, event));
            if (!client.flush(Duration.ofSeconds(300))) {
                throw new IllegalStateException("not delivered: " + client.stats());
            }
            if (r >= 0) {
                baseMed.add(b[0]);
                baseP99.add(b[1]);
                sdkMed.add(s[0]);
                sdkP99.add(s[1]);
                emitMed.add(e[0]);
                emitP99.add(e[1]);
            }
        }
        // Throughput through the SDK, until the sidecar acknowledged every event.
        long t0 = System.nanoTime();
        try (Monitored job = client.job(App.of("bench", "1.0")).businessKey("LOT-RATE").start()) {
            for (int i = 0; i < events - 2; i++) {
                job.progress(0.5);
            }
            job.finish();
        }
        if (!client.flush(Duration.ofSeconds(600))) {
            throw new IllegalStateException("not delivered: " + client.stats());
        }
        double sdkRate = events / ((System.nanoTime() - t0) / 1e9);
        WafermonClient.Stats st = client.stats();
        client.close();

        // Baseline: the same events POSTed by a plain loop, 500 per request.
        String url = System.getenv().getOrDefault("WAFERMON_SIDECAR_URL", "http://127.0.0.1:17000");
        HttpClient http = HttpClient.newHttpClient();
        long t1 = System.nanoTime();
        for (int sent = 0; sent < events; sent += 500) {
            StringBuilder body = new StringBuilder();
            for (int i = 0; i < Math.min(500, events - sent); i++) {
                event.put("event_id", UUID.randomUUID().toString());
                body.append(Json.write(event)).append('\n');
            }
            HttpResponse<String> resp = http.send(HttpRequest.newBuilder(URI.create(url + "/v1/ingest/events"))
                    .header("Content-Type", "application/x-ndjson")
                    .POST(HttpRequest.BodyPublishers.ofString(body.toString())).build(), HttpResponse.BodyHandlers.ofString());
            if (resp.statusCode() != 202) {
                throw new IllegalStateException("baseline POST: " + resp.statusCode() + " " + resp.body());
            }
        }
        double rawRate = events / ((System.nanoTime() - t1) / 1e9);

        long bm = median(baseMed);
        Map<String, Object> out = new LinkedHashMap<>();
        Map<String, Object> cost = new LinkedHashMap<>();
        cost.put("method", "ns per call, each call timed with System.nanoTime (timer included), "
                + calls + " calls per round after a warm-up round, median of " + rounds + " rounds, "
                + "while the sender delivers to a real sidecar");
        cost.put("progress_median_ns", median(sdkMed));
        cost.put("progress_p99_ns", median(sdkP99));
        cost.put("emit_event_median_ns", median(emitMed));
        cost.put("emit_event_p99_ns", median(emitP99));
        cost.put("baseline", "ArrayBlockingQueue.offer of a new record with the same fields, drained every 200 ms");
        cost.put("baseline_median_ns", bm);
        cost.put("baseline_p99_ns", median(baseP99));
        cost.put("progress_median_ratio_to_baseline", Math.round(100.0 * median(sdkMed) / Math.max(bm, 1)) / 100.0);
        cost.put("progress_p99_ratio_to_baseline", Math.round(100.0 * median(sdkP99) / Math.max(median(baseP99), 1)) / 100.0);
        cost.put("emit_event_median_ratio_to_baseline", Math.round(100.0 * median(emitMed) / Math.max(bm, 1)) / 100.0);
        cost.put("shed", st.shed());
        out.put("caller_cost", cost);
        Map<String, Object> rate = new LinkedHashMap<>();
        rate.put("method", events + " progress events, from the first call until flush() returned "
                + "(the sidecar acknowledged all)");
        rate.put("events_per_s", Math.round(sdkRate));
        rate.put("baseline", "the same number of events POSTed by a plain java.net.http loop, 500 per request");
        rate.put("baseline_events_per_s", Math.round(rawRate));
        rate.put("ratio_to_baseline", Math.round(1000.0 * sdkRate / rawRate) / 1000.0);
        out.put("throughput", rate);
        System.out.println(Json.write(out));
        System.exit(0);
    }
}
