package dev.wafermon.sdk;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.locks.ReentrantLock;

/**
 * A running job or subjob: {@code started} when made, {@code progress} per tick, and
 * {@code finished} or {@code failed} at its end. Use it with try-with-resources:
 *
 * <pre>{@code
 * try (Monitored lot = client.job(app).businessKey("LOT-1").start()) {
 *     for (int slot = 1; slot <= 25; slot++) {
 *         try (Monitored wafer = lot.subjob().subKey("wafer-" + slot).start()) {
 *             wafer.run(() -> process(wafer));   // finished, or failed with the exception
 *         }
 *         lot.progress(slot / 25.0);
 *     }
 *     lot.finish();
 * }
 * }</pre>
 *
 * <p>{@link #close()} on an entity that was neither finished nor failed reports it
 * {@code failed} ({@value #UNFINISHED}): Java's close() cannot see the exception that left the
 * block, and a job that ended early must not look finished. {@link #run} and {@link #call}
 * record the exception itself (type, message, stack) and rethrow it.
 *
 * <p>Figures: {@code duration_s} from {@link System#nanoTime()}; {@code cpu_user_s} and
 * {@code cpu_system_s} the CPU time of the thread that started the entity between its start
 * and end (ThreadMXBean; when the end comes from another thread, or on a virtual thread, where
 * per-thread CPU is not measured, the process's CPU time from OperatingSystemMXBean, all as
 * user time); {@code mem_max_mb} the JVM's peak memory so far (the sum of every memory pool's
 * peak, MemoryPoolMXBean).
 *
 * <p>Thread-safe: ticks may come from several threads; a lock (not {@code synchronized}, so
 * virtual threads do not pin) guards the metadata, and the caller never waits on I/O.
 */
public final class Monitored implements AutoCloseable {
    /** The error type of an entity closed without finish() or fail(). */
    public static final String UNFINISHED = "wafermon.Unfinished";

    private static final ThreadMXBean THREADS = ManagementFactory.getThreadMXBean();

    private final WafermonClient client;
    private final Wire.Head head;
    private final String id;
    private final String siteId;
    private final String businessKey;
    private final App app;
    private final long startNanos;
    private final Thread thread;
    private final long userNanos0;
    private final long cpuNanos0;
    private final long processNanos0;
    private final ReentrantLock lock = new ReentrantLock();
    private final Map<String, Object> metadata;
    private byte[] metadataJson;
    private double lastProgress = Double.NaN;
    private boolean ended;

    Monitored(WafermonClient client, App app, String type, Monitored parent, String businessKey,
              String subKey, Map<String, ?> metadata) {
        this.client = client;
        this.app = app;
        this.siteId = client.siteIdForJobs();
        this.id = Ids.uuid7();
        check("business_key", businessKey);
        check("sub_key", subKey);
        if (businessKey == null && parent != null) {
            businessKey = parent.businessKey; // a subjob takes the lot's key: a query by lot finds its wafers
        }
        this.businessKey = businessKey;
        this.head = new Wire.Head(siteId, app, type, id, parent == null ? null : parent.id,
                businessKey, subKey);
        this.metadata = metadata == null ? new LinkedHashMap<>() : new LinkedHashMap<>(metadata);
        this.metadataJson = client.encodeMetadata(this.metadata);
        this.thread = Thread.currentThread();
        this.userNanos0 = threadUser();
        this.cpuNanos0 = threadCpu();
        this.processNanos0 = processCpu();
        this.startNanos = System.nanoTime();
        client.offerLifecycle(new Wire.Lifecycle(head, "started", Wire.nowMicros(), Double.NaN,
                Double.NaN, Double.NaN, 0, 0, metadataJson, null));
    }

    private static void check(String field, String key) {
        if (key != null && (key.isEmpty() || key.length() > 256)) {
            throw new IllegalArgumentException(field + ": must be 1-256 characters, got " + key.length());
        }
    }

    /** The entity id (a UUID version 7, as text), as on the wire. */
    public String id() {
        return id;
    }

    /** Starts a subjob of this job (or of this subjob's job tree): set its keys, then start(). */
    public JobBuilder subjob() {
        return new JobBuilder(client, app, "subjob", this);
    }

    /** A progress tick with a fraction done (0..1). */
    public void progress(double fraction) {
        progress(fraction, null);
    }

    /** A progress tick with metadata merged (top-level keys) into the entity's metadata. */
    public void progress(Map<String, ?> moreMetadata) {
        progress(Double.NaN, moreMetadata);
    }

    /**
     * A progress tick: {@code fraction} (0..1, or NaN for none) and metadata to merge. A tick
     * shed because the queue is full is counted in {@link WafermonClient#stats()}.
     */
    public void progress(double fraction, Map<String, ?> moreMetadata) {
        if (!Double.isNaN(fraction) && (fraction < 0 || fraction > 1)) {
            throw new IllegalArgumentException("progress: must be between 0 and 1, got " + fraction);
        }
        long now = System.nanoTime();
        lock.lock();
        try {
            requireOpen("progress");
            if (moreMetadata != null && !moreMetadata.isEmpty()) {
                metadata.putAll(moreMetadata);
                metadataJson = client.encodeMetadata(metadata);
            }
            if (!Double.isNaN(fraction)) {
                lastProgress = fraction;
            }
            Wire.Lifecycle item = new Wire.Lifecycle(head, "progress", Wire.nowMicros(), (now - startNanos) / 1e9,
                    fraction, Double.NaN, 0, 0, metadataJson, null);
            client.offerLifecycle(item); // under the lock: an entity's events queue in time order
        } finally {
            lock.unlock();
        }
    }

    /** Ends the entity successfully ({@code finished}). */
    public void finish() {
        end("finished", null);
    }

    /** Ends the entity as failed, with the exception's class name, message and stack trace. */
    public void fail(Throwable error) {
        StringWriter stack = new StringWriter();
        error.printStackTrace(new PrintWriter(stack));
        fail(error.getClass().getName(), error.getMessage(), stack.toString());
    }

    /** Ends the entity as failed with an error type name and message. */
    public void fail(String type, String message) {
        fail(type, message, null);
    }

    /** Ends the entity as failed with an error type name, message and stack text (may be null). */
    public void fail(String type, String message, String stack) {
        if (type == null || type.isEmpty()) {
            throw new IllegalArgumentException("error.type: must not be empty");
        }
        if (stack != null && stack.length() > Wire.ERROR_STACK_MAX) {
            stack = "...\n" + stack.substring(stack.length() - (Wire.ERROR_STACK_MAX - 4));
        }
        end("failed", new String[] {cut(type, Wire.ERROR_TYPE_MAX), cut(message, Wire.ERROR_MESSAGE_MAX), stack});
    }

    private static String cut(String s, int max) {
        return s == null || s.length() <= max ? s : s.substring(0, max);
    }

    /** True once finish() or fail() was called. */
    public boolean isEnded() {
        lock.lock();
        try {
            return ended;
        } finally {
            lock.unlock();
        }
    }

    /** Runs the work: finish() after it, or fail(e) and rethrow when it throws. */
    public void run(Work work) throws Exception {
        call(() -> {
            work.run();
            return null;
        });
    }

    /** Calls the work: finish() after it, or fail(e) and rethrow when it throws. */
    public <T> T call(Callable<T> work) throws Exception {
        T result;
        try {
            result = work.call();
        } catch (Exception | Error e) {
            if (!isEnded()) {
                fail(e);
            }
            throw e;
        }
        if (!isEnded()) {
            finish();
        }
        return result;
    }

    /** Work that may throw, for {@link #run}. */
    @FunctionalInterface
    public interface Work {
        /** Does the work. */
        void run() throws Exception;
    }

    /** Reports {@code failed} ({@value #UNFINISHED}) when neither finish() nor fail() was called. */
    @Override
    public void close() {
        if (!isEnded()) {
            fail(UNFINISHED, "closed without finish() or fail(): the block was left early "
                    + "(an exception?)");
        }
    }

    private void requireOpen(String what) {
        if (ended) {
            throw new IllegalStateException(what + ": entity " + id + " has already ended");
        }
    }

    private void end(String kind, String[] error) {
        long now = System.nanoTime();
        double user;
        double system;
        long u = Thread.currentThread() == thread ? threadUser() : -1;
        long c = u >= 0 ? threadCpu() : -1;
        if (u >= 0 && c >= 0 && userNanos0 >= 0 && cpuNanos0 >= 0) {
            user = Math.max(0, u - userNanos0) / 1e9;
            system = Math.max(0, (c - u) - (cpuNanos0 - userNanos0)) / 1e9;
        } else {
            long p = processCpu();
            user = p >= 0 && processNanos0 >= 0 ? Math.max(0, p - processNanos0) / 1e9 : 0;
            system = 0;
        }
        double mem = Wire.memMaxMb();
        lock.lock();
        try {
            requireOpen(kind.equals("finished") ? "finish" : "fail");
            ended = true;
            Wire.Lifecycle item = new Wire.Lifecycle(head, kind, Wire.nowMicros(), (now - startNanos) / 1e9,
                    lastProgress, user, system, mem, metadataJson, error);
            client.offerLifecycle(item);
        } finally {
            lock.unlock();
        }
    }

    private static long threadUser() {
        try {
            return THREADS.isCurrentThreadCpuTimeSupported() ? THREADS.getCurrentThreadUserTime() : -1;
        } catch (UnsupportedOperationException e) {
            return -1;
        }
    }

    private static long threadCpu() {
        try {
            return THREADS.isCurrentThreadCpuTimeSupported() ? THREADS.getCurrentThreadCpuTime() : -1;
        } catch (UnsupportedOperationException e) {
            return -1;
        }
    }

    private static long processCpu() {
        java.lang.management.OperatingSystemMXBean os = ManagementFactory.getOperatingSystemMXBean();
        if (os instanceof com.sun.management.OperatingSystemMXBean) {
            return ((com.sun.management.OperatingSystemMXBean) os).getProcessCpuTime();
        }
        return -1;
    }

    /** Sets the keys of a job or subjob, then {@link #start()}s it. */
    public static final class JobBuilder {
        private final WafermonClient client;
        private App app;
        private final String type;
        private final Monitored parent;
        private String businessKey;
        private String subKey;
        private Map<String, ?> metadata;

        JobBuilder(WafermonClient client, App app, String type, Monitored parent) {
            this.client = client;
            this.app = app;
            this.type = type;
            this.parent = parent;
        }

        /**
         * The business key (a lot number, an order), 1-256 characters. A subjob without one
         * takes its parent's.
         */
        public JobBuilder businessKey(String key) {
            this.businessKey = key;
            return this;
        }

        /** The sub key (a wafer, a slot), 1-256 characters. */
        public JobBuilder subKey(String key) {
            this.subKey = key;
            return this;
        }

        /** Metadata sent with every event of the entity (copied). */
        public JobBuilder metadata(Map<String, ?> metadata) {
            this.metadata = metadata;
            return this;
        }

        /** Another app for a subjob (by default its job's). */
        public JobBuilder app(App app) {
            this.app = app;
            return this;
        }

        /** Emits {@code started} and returns the running entity. */
        public Monitored start() {
            return new Monitored(client, app, type, parent, businessKey, subKey, metadata);
        }
    }
}
