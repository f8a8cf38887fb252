package dev.wafermon.sdk;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * The queue and the one background thread that empties it.
 *
 * <p>Callers put items in a queue bounded in events ({@code queue_size}) and in bytes
 * ({@code queue_max_bytes}); that is all they wait for (a lock, never I/O; a
 * {@link ReentrantLock}, so virtual threads do not pin). When the queue is full, a progress
 * tick is shed; a lifecycle event (started, finished, failed, or a wire-form event) first
 * evicts queued progress ticks, then waits up to {@code block_timeout} for room, and then
 * goes to the disk spool on the caller's thread, so it is never lost. Every shed tick is
 * counted and logged (rate-limited).
 *
 * <p>The thread sends a batch when it holds {@code batch_size} events or its oldest event is
 * {@code flush_interval} old. A failed attempt is retried up to {@code max_retries} times with
 * exponential backoff and full jitter ({@code retry_base_delay} .. {@code retry_max_delay});
 * a {@code Retry-After} makes the next request to that destination wait at least that long.
 * Then the batch goes to the destination's spool, and while a spool holds files, new batches
 * join it (so an entity's events stay in order); every {@code replay_interval} the spool is
 * replayed oldest first, and at start-up, files a killed process left are replayed too.
 */
final class Sender {
    private static final System.Logger LOG = System.getLogger("dev.wafermon.sdk");
    /** Starts each line console mode prints (Python's is {@code wafermon-sdk: send }). */
    static final String CONSOLE_PREFIX = "wafermon-sdk-java: send ";

    /** One delivery attempt of a spooled file's lines. */
    @FunctionalInterface
    interface Attempt {
        Spool.Outcome attempt(List<Wire.Line> lines) throws InterruptedException;
    }

    /** A destination: its sink, its spool, and when it may be asked again. */
    final class Target {
        final Sinks.Sink sink;
        final Spool spool;
        long notBefore = System.nanoTime(); // Retry-After
        boolean down; // the last attempt failed: new batches go to the spool, replay decides

        Target(Sinks.Sink sink, Spool spool) {
            this.sink = sink;
            this.spool = spool;
        }
    }

    private final Settings s;
    final List<Target> targets = new ArrayList<>();
    private final ReentrantLock lock = new ReentrantLock();
    private final Condition work = lock.newCondition();
    private final Condition settled = lock.newCondition();
    private final ArrayDeque<Wire.Item> queue = new ArrayDeque<>();
    private long queuedBytes;
    private long flushRequested;
    private long flushServed;
    private boolean flushDelivered;
    private boolean closing;
    private volatile int waiting; // callers waiting for room: the sender skips backoffs
    private boolean closed; // no new items
    private final Thread thread;

    final AtomicLong sent = new AtomicLong();
    final AtomicLong spooled = new AtomicLong();
    final AtomicLong replayed = new AtomicLong();
    final AtomicLong shed = new AtomicLong();
    final AtomicLong lost = new AtomicLong();
    final AtomicLong rejected = new AtomicLong();
    final AtomicLong retries = new AtomicLong();
    volatile String lastError;
    private long lastShedLog;

    Sender(Settings s) throws IOException {
        this.s = s;
        if (s.usesSidecar()) {
            targets.add(new Target(new Sinks.Sidecar(s), new Spool(s.spoolDir, "sidecar", s.spoolMaxBytes, s.spoolMaxAge)));
        }
        if (s.usesDirect()) {
            Sinks.Sink direct = s.fileRoot != null ? new Sinks.FileTree(s.fileRoot) : S3Support.sink(s);
            targets.add(new Target(direct, new Spool(s.spoolDir, "direct", s.spoolMaxBytes, s.spoolMaxAge)));
        }
        thread = new Thread(this::loop, "wafermon-sender");
        thread.setDaemon(true);
        thread.start();
    }

    // ---- caller side ----------------------------------------------------------------------

    private boolean fits(Wire.Item item) {
        return queue.isEmpty() || (queue.size() < s.queueSize && queuedBytes + item.size() <= s.queueMaxBytes);
    }

    private void add(Wire.Item item) {
        queue.addLast(item);
        queuedBytes += item.size();
        if (queue.size() == 1 || queue.size() >= s.batchSize) {
            work.signal();
        }
    }

    /** Queues an item; false when it was shed (progress, queue full). */
    boolean offer(Wire.Item item) {
        lock.lock();
        try {
            if (closed) {
                throw new IllegalStateException("the wafermon client is closed");
            }
            if (fits(item)) {
                add(item);
                return true;
            }
            if (item.isProgress()) {
                shedOne();
                return false;
            }
            for (Iterator<Wire.Item> it = queue.iterator(); it.hasNext() && !fits(item); ) {
                Wire.Item queued = it.next();
                if (queued.isProgress()) {
                    it.remove();
                    queuedBytes -= queued.size();
                    shedOne();
                }
            }
            long wait = s.blockTimeout.toNanos();
            waiting++;
            work.signal(); // a sender in a backoff spools its batch now and takes the next one
            try {
                while (!fits(item) && wait > 0) {
                    wait = settled.awaitNanos(wait);
                }
            } finally {
                waiting--;
            }
            if (fits(item)) {
                add(item);
                return true;
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } finally {
            lock.unlock();
        }
        spoolNow(List.of(item.encode()), "the queue is full");
        return true;
    }

    private void shedOne() {
        long n = shed.incrementAndGet();
        long now = System.nanoTime();
        if (n == 1 || now - lastShedLog > TimeUnit.SECONDS.toNanos(10)) {
            lastShedLog = now;
            LOG.log(System.Logger.Level.WARNING, "wafermon: queue full (" + s.queueSize + " events / "
                    + s.queueMaxBytes + " bytes): progress events shed, " + n + " so far");
        }
    }

    /** Writes lines straight to every destination's spool (full queue, or shutdown). */
    private void spoolNow(List<Wire.Line> lines, String why) {
        for (Target t : targets) {
            try {
                lost.addAndGet(t.spool.write(lines));
                spooled.addAndGet(lines.size());
            } catch (IOException e) {
                lost.addAndGet(lines.size());
                lastError = "cannot spool to " + t.spool.dir + ": " + e;
                LOG.log(System.Logger.Level.ERROR, "wafermon: " + lines.size() + " events LOST (" + why
                        + ", and " + lastError + ")");
            }
        }
    }

    /** Waits until everything queued before the call was delivered or spooled. */
    boolean flush(long timeoutNanos) {
        lock.lock();
        try {
            long ticket = ++flushRequested;
            work.signal();
            long wait = timeoutNanos;
            while (flushServed < ticket && wait > 0 && thread.isAlive()) {
                wait = settled.awaitNanos(wait);
            }
            return flushServed >= ticket && flushDelivered;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        } finally {
            lock.unlock();
        }
    }

    /** Stops taking items, flushes within the time, then stops the thread; returns what was left. */
    long close(long timeoutNanos) {
        long deadline = System.nanoTime() + timeoutNanos;
        lock.lock();
        try {
            if (closed) {
                return 0;
            }
            closed = true;
        } finally {
            lock.unlock();
        }
        flush(timeoutNanos);
        lock.lock();
        try {
            closing = true;
            work.signal();
        } finally {
            lock.unlock();
        }
        try {
            thread.join(Math.max(1, TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime())));
            if (thread.isAlive()) {
                thread.interrupt(); // in a backoff or a request: it spools what it holds
                thread.join(5000);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        return queued();
    }

    int queued() {
        lock.lock();
        try {
            return queue.size();
        } finally {
            lock.unlock();
        }
    }

    long queuedBytes() {
        lock.lock();
        try {
            return queuedBytes;
        } finally {
            lock.unlock();
        }
    }

    // ---- the sender thread ----------------------------------------------------------------

    private void loop() {
        long nextReplay = System.nanoTime(); // at start: what a previous process left
        try {
            while (true) {
                List<Wire.Item> batch = new ArrayList<>();
                long ticket;
                boolean replayNow = false;
                boolean stop;
                lock.lock();
                try {
                    while (true) {
                        ticket = flushRequested;
                        boolean urgent = ticket > flushServed || closing;
                        long now = System.nanoTime();
                        Wire.Item oldest = queue.peekFirst();
                        if (now >= nextReplay) {
                            replayNow = true; // also under a steady load: the spool never starves
                            break;
                        }
                        if (oldest != null && (urgent || queue.size() >= s.batchSize
                                || now - oldest.nanos >= s.flushInterval.toNanos())) {
                            while (!queue.isEmpty() && batch.size() < s.batchSize) {
                                Wire.Item it = queue.pollFirst();
                                queuedBytes -= it.size();
                                batch.add(it);
                            }
                            settled.signalAll(); // room for blocked callers
                            break;
                        }
                        if (urgent) {
                            replayNow = true; // queue drained for a flush: replay, then answer it
                            break;
                        }
                        long wait = nextReplay - now;
                        if (oldest != null) {
                            wait = Math.min(wait, s.flushInterval.toNanos() - (now - oldest.nanos));
                        }
                        work.awaitNanos(Math.max(wait, 1000));
                    }
                    stop = closing && queue.isEmpty() && batch.isEmpty();
                } finally {
                    lock.unlock();
                }
                if (!batch.isEmpty()) {
                    deliver(encode(batch));
                }
                if (!replayNow) {
                    continue;
                }
                replay();
                nextReplay = System.nanoTime() + s.replayInterval.toNanos();
                lock.lock();
                try {
                    if (ticket > flushServed && queue.isEmpty()) {
                        flushServed = ticket;
                        flushDelivered = allSpoolsEmpty();
                        settled.signalAll();
                    }
                } finally {
                    lock.unlock();
                }
                if (stop) {
                    return;
                }
            }
        } catch (InterruptedException e) {
            abort();
        } catch (RuntimeException | Error e) {
            lastError = "sender thread failed: " + e;
            LOG.log(System.Logger.Level.ERROR, "wafermon: sender thread failed; queued events go to the spool", e);
            abort();
        } finally {
            lock.lock();
            try {
                settled.signalAll();
            } finally {
                lock.unlock();
            }
        }
    }

    private boolean allSpoolsEmpty() {
        for (Target t : targets) {
            if (!t.spool.isEmpty()) {
                return false;
            }
        }
        return true;
    }

    /** Interrupted at close: what is still queued goes to disk, nothing over the network. */
    private void abort() {
        List<Wire.Line> lines = new ArrayList<>();
        lock.lock();
        try {
            for (Wire.Item it : queue) {
                try {
                    lines.add(it.encode());
                } catch (RuntimeException e) {
                    rejected.incrementAndGet();
                }
            }
            queue.clear();
            queuedBytes = 0;
        } finally {
            lock.unlock();
        }
        if (!lines.isEmpty()) {
            spoolNow(lines, "the client closed before they were sent");
            LOG.log(System.Logger.Level.WARNING, "wafermon: close timed out; " + lines.size()
                    + " events spooled to " + s.spoolDir + " for the next start");
        }
    }

    private List<Wire.Line> encode(List<Wire.Item> batch) {
        List<Wire.Line> lines = new ArrayList<>(batch.size());
        for (Wire.Item it : batch) {
            try {
                lines.add(it.encode());
            } catch (RuntimeException e) {
                rejected.incrementAndGet();
                LOG.log(System.Logger.Level.WARNING, "wafermon: an event could not be encoded: " + e);
            }
        }
        return lines;
    }

    /**
     * Console mode: each event's wire JSON on stderr as it is sent, one line each (like
     * OpenTelemetry's console exporter), for seeing what a program reports while writing it.
     * One print per batch, so lines of other threads do not land inside it.
     */
    private static void print(List<Wire.Line> batch) {
        StringBuilder out = new StringBuilder();
        for (Wire.Line line : batch) {
            int end = line.bytes.length;
            while (end > 0 && line.bytes[end - 1] == '\n') {
                end--;
            }
            out.append(CONSOLE_PREFIX).append(new String(line.bytes, 0, end, StandardCharsets.UTF_8)).append('\n');
        }
        System.err.print(out);
        System.err.flush();
    }

    private void deliver(List<Wire.Line> batch) throws InterruptedException {
        if (s.console) {
            print(batch);
        }
        for (Target t : targets) {
            List<Wire.Line> lines = batch; // what this destination still has to take
            if (t.down || !t.spool.isEmpty()) {
                toSpool(t, lines); // keep order: replay sends these after the older files
                continue;
            }
            for (int attempt = 0; ; attempt++) {
                Sinks.Result r;
                try {
                    if (!backoff(t.notBefore)) {
                        // Callers wait for room: the disk takes this batch so the queue moves
                        // (in order: later batches join the spool), the replay sends it.
                        t.down = true;
                        toSpool(t, lines);
                        break;
                    }
                    r = t.sink.send(lines);
                } catch (InterruptedException e) {
                    toSpool(t, lines);
                    throw e;
                }
                if (r.stored) {
                    accepted(lines.size(), r);
                    break;
                }
                if (r.done > 0) { // a split batch whose first part was stored: retry the rest
                    accepted(r.done, r);
                    lines = lines.subList(r.done, lines.size());
                }
                noteFailure(t, r);
                if (attempt >= s.maxRetries) {
                    t.down = true;
                    LOG.log(System.Logger.Level.WARNING, "wafermon: " + t.sink.name() + " unavailable after "
                            + (attempt + 1) + " attempts (" + r.error + "); spooling to " + t.spool.dir);
                    toSpool(t, lines);
                    break;
                }
                retries.incrementAndGet();
                long cap = Math.min(s.retryMaxDelay.toNanos(), s.retryBaseDelay.toNanos() << Math.min(attempt + 1, 30));
                long delay = ThreadLocalRandom.current().nextLong(Math.max(cap, 1));
                t.notBefore = Math.max(t.notBefore, System.nanoTime() + delay);
            }
        }
    }

    private void accepted(int count, Sinks.Result r) {
        sent.addAndGet(count - r.refusals.size());
        if (!r.refusals.isEmpty()) {
            rejected.addAndGet(r.refusals.size());
            int shown = 0;
            for (String why : r.refusals) {
                if (shown++ == 20) {
                    break;
                }
                LOG.log(System.Logger.Level.WARNING, "wafermon: event refused for good: " + why);
            }
        }
    }

    private void noteFailure(Target t, Sinks.Result r) {
        lastError = r.error;
        if (!Double.isNaN(r.retryAfter)) {
            // +10 ms: the server counts from when it answered, we from when we read it.
            t.notBefore = Math.max(t.notBefore, System.nanoTime() + (long) (r.retryAfter * 1e9) + 10_000_000L);
        }
    }

    private void toSpool(Target t, List<Wire.Line> lines) {
        if (lines.isEmpty()) {
            return;
        }
        try {
            lost.addAndGet(t.spool.write(lines));
            spooled.addAndGet(lines.size());
        } catch (IOException e) {
            lost.addAndGet(lines.size());
            lastError = "cannot spool to " + t.spool.dir + ": " + e;
            LOG.log(System.Logger.Level.ERROR, "wafermon: " + lines.size() + " events LOST: " + lastError);
        }
    }

    /** Waits until deadline; false (at once) when callers are waiting for room in the queue. */
    private boolean backoff(long deadline) throws InterruptedException {
        lock.lock();
        try {
            long wait;
            while ((wait = deadline - System.nanoTime()) > 0) {
                if (waiting > 0) {
                    return false;
                }
                work.awaitNanos(wait);
            }
            return true;
        } finally {
            lock.unlock();
        }
    }

    /** Replays each destination's spool, oldest first, until it is empty or one attempt fails. */
    private void replay() throws InterruptedException {
        for (Target t : targets) {
            for (Path f : t.spool.files()) {
                if (System.nanoTime() < t.notBefore) {
                    break; // Retry-After or backoff still running: the next pass
                }
                Spool.Outcome o = t.spool.replay(f, lines -> {
                    Sinks.Result r = t.sink.send(lines);
                    if (!r.stored) {
                        noteFailure(t, r);
                        return Spool.Outcome.UNAVAILABLE;
                    }
                    accepted(lines.size(), r);
                    replayed.addAndGet(lines.size());
                    return Spool.Outcome.DELIVERED;
                });
                if (o == Spool.Outcome.UNAVAILABLE) {
                    t.down = true;
                    break;
                }
            }
            if (t.spool.isEmpty()) {
                if (t.down) {
                    LOG.log(System.Logger.Level.INFO, "wafermon: " + t.sink.name() + " reachable again; spool replayed");
                }
                t.down = false;
            } else {
                lost.addAndGet(t.spool.enforceBounds());
            }
        }
    }

    /** Files waiting in the spools. */
    int spoolFiles() {
        int n = 0;
        for (Target t : targets) {
            n += t.spool.files().size();
        }
        return n;
    }
}
