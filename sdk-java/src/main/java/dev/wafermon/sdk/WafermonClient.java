package dev.wafermon.sdk;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Reports jobs, subjobs and events to wafermon: to the local sidecar over HTTP, or directly to
 * a folder in the filesystem backend's layout, or both. The calling thread only queues (no
 * network, no disk); one background thread batches, retries and spools.
 *
 * <pre>{@code
 * try (WafermonClient client = WafermonClient.builder().siteId("fab1").build()) {
 *     try (Monitored lot = client.job(App.of("etch", "2.1")).businessKey("LOT-1").start()) {
 *         ...
 *         lot.finish();
 *     }
 * }
 * }</pre>
 *
 * <p>Settings: the builder's values override {@code WAFERMON_*} variables, which override the
 * settings file ({@code WAFERMON_SDK_CONFIG}), which overrides the defaults; see
 * docs/sdk-java.md. A shutdown hook closes the client within {@code flush_timeout} when the
 * JVM exits, and logs what it could not deliver (it stays in the spool for the next start).
 */
public final class WafermonClient implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger("dev.wafermon.sdk");
    /** {@code source.sdk} of the events this SDK makes. */
    public static final String SDK_NAME = Wire.SDK_NAME;
    /** {@code source.sdk_version} of the events this SDK makes. */
    public static final String SDK_VERSION = Wire.SDK_VERSION;

    private final Settings settings;
    private final Sender sender;
    private final Thread hook;
    private final AtomicLong truncated = new AtomicLong();
    private final AtomicLong invalid = new AtomicLong();

    private WafermonClient(Settings settings) {
        this.settings = settings;
        warmUp();
        try {
            this.sender = new Sender(settings);
        } catch (IOException e) {
            throw new WafermonConfigException(List.of("WAFERMON_SPOOL_DIR: cannot create "
                    + settings.spoolDir + ": " + e));
        }
        if (settings.shutdownHook) {
            hook = new Thread(this::closeAtExit, "wafermon-shutdown");
            Runtime.getRuntime().addShutdownHook(hook);
        } else {
            hook = null;
        }
    }

    /**
     * Initializes the SDK's classes here, once: otherwise the first jobs started at the same
     * time on virtual threads wait for one another's class initialization (the host name
     * lookup in Wire's), which pins their carrier threads (JFR jdk.VirtualThreadPinned).
     */
    private static void warmUp() {
        ClassLoader loader = WafermonClient.class.getClassLoader();
        for (String name : new String[] {"dev.wafermon.sdk.Wire", "dev.wafermon.sdk.Monitored", "dev.wafermon.sdk.Ids"}) {
            try {
                Class.forName(name, true, loader);
            } catch (ClassNotFoundException e) {
                throw new IllegalStateException(e);
            }
        }
    }

    /** A client configured from the environment and settings file alone. */
    public static WafermonClient fromEnvironment() {
        return builder().build();
    }

    /** A builder; values set on it override the environment and the settings file. */
    public static Builder builder() {
        return new Builder();
    }

    /** The settings the client runs with. */
    public Settings settings() {
        return settings;
    }

    // ---- jobs ---------------------------------------------------------------------------

    /** Starts describing a job of this app: set its keys, then {@code start()}. */
    public Monitored.JobBuilder job(App app) {
        Objects.requireNonNull(app, "app");
        return new Monitored.JobBuilder(this, app, "job", null);
    }

    /** Starts a job with a business key (emits {@code started}). */
    public Monitored startJob(App app, String businessKey) {
        return job(app).businessKey(businessKey).start();
    }

    String siteIdForJobs() {
        if (settings.siteId == null) {
            throw new IllegalStateException("site_id: not set (WAFERMON_SITE_ID or Builder.siteId); "
                    + "jobs need it");
        }
        return settings.siteId;
    }

    /** Compact JSON of metadata, or the truncation note when it is above the schema's cap. */
    byte[] encodeMetadata(Map<String, Object> metadata) {
        if (metadata.isEmpty()) {
            return null;
        }
        byte[] json = Json.bytes(metadata);
        if (json.length <= Wire.METADATA_MAX_BYTES) {
            return json;
        }
        truncated.incrementAndGet();
        Map<String, Object> note = new LinkedHashMap<>();
        note.put(Wire.TRUNCATED_KEY, "metadata of " + json.length + " bytes was above the "
                + Wire.METADATA_MAX_BYTES + "-byte cap and was dropped");
        return Json.bytes(note);
    }

    void offerLifecycle(Wire.Lifecycle item) {
        sender.offer(item);
    }

    // ---- wire-form events -------------------------------------------------------------------

    /**
     * Queues one event in wire form (schema/event.v1.schema.json): a map as parsed from JSON.
     * Its own {@code event_id} and {@code time} are kept.
     *
     * @return false when the queue was full and it was a progress event (shed, counted)
     * @throws IllegalArgumentException naming the field and the reason when it is not a valid
     *     event (nothing is queued)
     */
    public boolean emitEvent(Map<String, ?> event) {
        Wire.Encoded item = check(event);
        return sender.offer(item);
    }

    /** Queues one event given as JSON text; see {@link #emitEvent(Map)}. */
    public boolean emitEvent(String json) {
        Object doc = Json.parse(json);
        if (!(doc instanceof Map)) {
            throw new IllegalArgumentException("event: expected a JSON object");
        }
        @SuppressWarnings("unchecked")
        Map<String, ?> map = (Map<String, ?>) doc;
        return emitEvent(map);
    }

    /**
     * Queues events in wire form. Invalid ones are skipped (each logged with the field and
     * reason, counted in {@link Stats#invalid()}); the valid ones are queued all the same.
     *
     * @return how many were queued
     */
    public int emitBatch(List<? extends Map<String, ?>> events) {
        int queued = 0;
        for (int i = 0; i < events.size(); i++) {
            Wire.Encoded item;
            try {
                item = check(events.get(i));
            } catch (IllegalArgumentException e) {
                invalid.incrementAndGet();
                LOG.log(System.Logger.Level.WARNING, "wafermon: emitBatch: event " + i + " skipped: " + e.getMessage());
                continue;
            }
            if (sender.offer(item)) {
                queued++;
            }
        }
        return queued;
    }

    private static Wire.Encoded check(Map<String, ?> e) {
        if (e == null) {
            throw new IllegalArgumentException("event: must not be null");
        }
        Object id = e.get("event_id");
        if (!(id instanceof String) || !isUuid((String) id)) {
            throw new IllegalArgumentException("event_id: expected a lower-case UUID, got " + show(id));
        }
        Object kind = e.get("kind");
        if (!(kind instanceof String) || !Wire.KINDS.contains(kind)) {
            throw new IllegalArgumentException("kind: must be one of started, progress, finished, failed, got "
                    + show(kind));
        }
        Object time = e.get("time");
        if (!(time instanceof String) || !isRfc3339((String) time)) {
            throw new IllegalArgumentException("time: expected an RFC 3339 time with an offset, got " + show(time));
        }
        // The UTC date places the event in direct mode; with an offset other than Z a file
        // sink works it out on the sender thread.
        String day = ((String) time).endsWith("Z") ? ((String) time).substring(0, 10) : null;
        Object site = e.get("site_id");
        if (!(site instanceof String) || !Settings.SITE_ID.matcher((String) site).matches()) {
            throw new IllegalArgumentException("site_id: must be 1-64 letters, digits, '.', '_' or '-' "
                    + "starting with a letter or digit, got " + show(site));
        }
        Object app = e.get("app");
        if (!(app instanceof Map) || !(((Map<?, ?>) app).get("name") instanceof String)) {
            throw new IllegalArgumentException("app: expected an object with a name, got " + show(app));
        }
        Object entity = e.get("entity");
        if (!(entity instanceof Map) || !(((Map<?, ?>) entity).get("id") instanceof String)
                || !(((Map<?, ?>) entity).get("type") instanceof String)) {
            throw new IllegalArgumentException("entity: expected an object with a type and an id, got " + show(entity));
        }
        Json.Out out = new Json.Out(512);
        out.value(e, 0);
        out.raw((byte) '\n');
        return new Wire.Encoded(new Wire.Line(out.toBytes(), (String) site, day), "progress".equals(kind));
    }

    private static boolean isUuid(String s) {
        if (s.length() != 36) {
            return false;
        }
        for (int i = 0; i < 36; i++) {
            char c = s.charAt(i);
            boolean dash = i == 8 || i == 13 || i == 18 || i == 23;
            if (dash ? c != '-' : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
                return false;
            }
        }
        return true;
    }

    /** YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM), checked by hand (no parse on the caller's thread). */
    static boolean isRfc3339(String s) {
        int n = s.length();
        if (n < 20) {
            return false;
        }
        String shape = "dddd-dd-ddTdd:dd:dd";
        for (int i = 0; i < shape.length(); i++) {
            char want = shape.charAt(i);
            char c = s.charAt(i);
            if (want == 'd' ? (c < '0' || c > '9') : (Character.toUpperCase(c) != want)) {
                return false;
            }
        }
        int month = (s.charAt(5) - '0') * 10 + (s.charAt(6) - '0');
        int dayOfMonth = (s.charAt(8) - '0') * 10 + (s.charAt(9) - '0');
        int hour = (s.charAt(11) - '0') * 10 + (s.charAt(12) - '0');
        int minute = (s.charAt(14) - '0') * 10 + (s.charAt(15) - '0');
        int second = (s.charAt(17) - '0') * 10 + (s.charAt(18) - '0');
        if (month < 1 || month > 12 || dayOfMonth < 1 || dayOfMonth > 31 || hour > 23 || minute > 59 || second > 60) {
            return false;
        }
        int i = 19;
        if (s.charAt(i) == '.') {
            int start = ++i;
            while (i < n && s.charAt(i) >= '0' && s.charAt(i) <= '9') {
                i++;
            }
            if (i == start) {
                return false;
            }
        }
        if (i == n - 1) {
            return Character.toUpperCase(s.charAt(i)) == 'Z';
        }
        return i == n - 6 && (s.charAt(i) == '+' || s.charAt(i) == '-') && s.charAt(i + 3) == ':'
                && Character.isDigit(s.charAt(i + 1)) && Character.isDigit(s.charAt(i + 2))
                && Character.isDigit(s.charAt(i + 4)) && Character.isDigit(s.charAt(i + 5));
    }

    private static String show(Object v) {
        String s = v instanceof String ? "'" + v + "'" : String.valueOf(v);
        return s.length() > 200 ? s.substring(0, 200) + "..." : s;
    }

    // ---- flush, close, stats ----------------------------------------------------------------

    /** Waits up to {@code flush_timeout} for everything queued to be delivered; see {@link #flush(Duration)}. */
    public boolean flush() {
        return flush(settings.flushTimeout);
    }

    /**
     * Waits until everything queued before the call was handled, at most {@code timeout}.
     *
     * @return true when all of it was delivered and no spool holds anything; false when it
     *     timed out or events wait in the spool (they are replayed by themselves)
     */
    public boolean flush(Duration timeout) {
        return sender.flush(timeout.toNanos());
    }

    /** Flushes and stops, within {@code flush_timeout}; see {@link #close(Duration)}. */
    @Override
    public void close() {
        close(settings.flushTimeout);
    }

    /**
     * Flushes within {@code timeout}, then stops the sender thread. What could not be sent by
     * then goes to the spool (logged) and is replayed by the next client on the same spool
     * folder. Later calls do nothing.
     */
    public void close(Duration timeout) {
        if (hook != null) {
            try {
                Runtime.getRuntime().removeShutdownHook(hook);
            } catch (IllegalStateException e) {
                // the JVM is shutting down: the hook is running or will run
            }
        }
        sender.close(timeout.toNanos());
    }

    private void closeAtExit() {
        sender.close(settings.flushTimeout.toNanos());
        Stats st = stats();
        if (st.spoolFiles() > 0) {
            LOG.log(System.Logger.Level.WARNING, "wafermon: at exit, " + st.spoolFiles()
                    + " spool file(s) wait in " + settings.spoolDir + " for the next start");
        }
    }

    /** The client's counters now. */
    public Stats stats() {
        return new Stats(sender.queued(), sender.queuedBytes(), sender.sent.get(), sender.spooled.get(),
                sender.replayed.get(), sender.spoolFiles(), sender.rejected.get(), invalid.get(),
                sender.shed.get(), sender.lost.get(), sender.retries.get(), truncated.get(), sender.lastError);
    }

    /**
     * The client's counters.
     *
     * @param queued            events in the queue now
     * @param queuedBytes       their estimated size
     * @param sent              events a destination acknowledged
     * @param spooled           events written to the spool
     * @param replayed          spooled events delivered later
     * @param spoolFiles        files waiting in the spool now
     * @param rejected          events a destination refused for good
     * @param invalid           wire-form events emitBatch skipped as invalid
     * @param shed              progress events dropped because the queue was full
     * @param lost              events lost otherwise (spool bounds, disk errors)
     * @param retries           retried attempts
     * @param metadataTruncated events whose metadata was above the cap
     * @param lastError         the last delivery error, or null
     */
    public record Stats(long queued, long queuedBytes, long sent, long spooled, long replayed,
                        long spoolFiles, long rejected, long invalid, long shed, long lost,
                        long retries, long metadataTruncated, String lastError) {}

    // ---- builder ------------------------------------------------------------------------------

    /** Settings for a client; anything not set comes from the environment, file or defaults. */
    public static final class Builder {
        private Map<String, String> env = System.getenv();
        private Path file;
        private final Map<String, Object> values = new LinkedHashMap<>();

        private Builder() {}

        /** The environment to read {@code WAFERMON_*} from (default: the process's). */
        public Builder environment(Map<String, String> env) {
            this.env = Map.copyOf(env);
            return this;
        }

        /** A settings file (.json, .yaml, .yml) instead of the one WAFERMON_SDK_CONFIG names. */
        public Builder configFile(Path file) {
            this.file = file;
            return this;
        }

        /** Any setting by its snake_case name (as in the file), e.g. {@code set("queue_size", 500)}. */
        public Builder set(String name, Object value) {
            values.put(name, value);
            return this;
        }

        /** sidecar, direct or both. */
        public Builder mode(Settings.Mode mode) {
            return set("mode", mode.name());
        }

        /** The sidecar's base URL. */
        public Builder sidecarUrl(String url) {
            return set("sidecar_url", url);
        }

        /** The bearer token for the sidecar. */
        public Builder token(String token) {
            return set("token", token);
        }

        /** The site id of the events the SDK makes. */
        public Builder siteId(String siteId) {
            return set("site_id", siteId);
        }

        /** Direct-mode target: file:///absolute/path. */
        public Builder directUrl(String url) {
            return set("direct_url", url);
        }

        /** Where undeliverable events wait on disk. */
        public Builder spoolDir(Path dir) {
            return set("spool_dir", dir.toString());
        }

        /** Queue bound in events. */
        public Builder queueSize(int events) {
            return set("queue_size", events);
        }

        /** Queue bound in bytes. */
        public Builder queueMaxBytes(long bytes) {
            return set("queue_max_bytes", bytes);
        }

        /** Events per request at most. */
        public Builder batchSize(int events) {
            return set("batch_size", events);
        }

        /** How long the sender waits to fill a batch. */
        public Builder flushInterval(Duration d) {
            return set("flush_interval", d);
        }

        /** Per HTTP request. */
        public Builder timeout(Duration d) {
            return set("timeout", d);
        }

        /** Attempts before a batch goes to the spool. */
        public Builder maxRetries(int n) {
            return set("max_retries", n);
        }

        /** Backoff bounds. */
        public Builder retryDelays(Duration base, Duration max) {
            set("retry_base_delay", base);
            return set("retry_max_delay", max);
        }

        /** How often spooled events are retried. */
        public Builder replayInterval(Duration d) {
            return set("replay_interval", d);
        }

        /** Default flush/close timeout, also the shutdown hook's. */
        public Builder flushTimeout(Duration d) {
            return set("flush_timeout", d);
        }

        /** Whether a shutdown hook closes the client at JVM exit (default true). */
        public Builder shutdownHook(boolean on) {
            return set("shutdown_hook", on);
        }

        /**
         * Debug: print each event's wire JSON to stderr as it is sent (default false), as
         * {@code WAFERMON_CONSOLE=1} does.
         */
        public Builder console(boolean on) {
            return set("console", on);
        }

        /**
         * Checks every setting and starts the client's sender thread.
         *
         * @throws WafermonConfigException listing every bad setting, each under its name
         */
        public WafermonClient build() {
            return new WafermonClient(Settings.load(file, env, values));
        }
    }
}
