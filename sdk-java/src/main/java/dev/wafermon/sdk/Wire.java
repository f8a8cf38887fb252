package dev.wafermon.sdk;

import java.lang.management.ManagementFactory;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.time.LocalDateTime;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.time.format.DateTimeParseException;
import java.util.Map;
import java.util.Set;

/**
 * The wire form of events (schema/event.v1.schema.json): queue items, and their encoding into
 * NDJSON lines, which happens on the sender thread for lifecycle events (the caller only
 * copies a few fields into a {@link Lifecycle}).
 */
final class Wire {
    private Wire() {}

    static final String SDK_NAME = "java";
    static final String SDK_VERSION = "0.1.0";
    static final int METADATA_MAX_BYTES = 16384;
    static final String TRUNCATED_KEY = "wafermon_sdk_truncated";
    static final int ERROR_TYPE_MAX = 256;
    static final int ERROR_MESSAGE_MAX = 8192;
    static final int ERROR_STACK_MAX = 65536;
    static final Set<String> KINDS = Set.of("started", "progress", "finished", "failed");

    /** One encoded event: its NDJSON line (with the newline) and where a file sink puts it. */
    static final class Line {
        final byte[] bytes;
        String siteId; // null: read from the bytes when a file sink needs it
        String day;

        Line(byte[] bytes, String siteId, String day) {
            this.bytes = bytes;
            this.siteId = siteId;
            this.day = day;
        }

        /** Fills siteId/day from the JSON (spooled lines, wire-form events); false if it cannot. */
        boolean place() {
            if (siteId != null && day != null) {
                return true;
            }
            try {
                Object doc = Json.parse(bytes);
                if (!(doc instanceof Map)) {
                    return false;
                }
                Object site = ((Map<?, ?>) doc).get("site_id");
                Object time = ((Map<?, ?>) doc).get("time");
                if (!(site instanceof String) || !Settings.SITE_ID.matcher((String) site).matches()
                        || !(time instanceof String)) {
                    return false;
                }
                siteId = (String) site;
                day = OffsetDateTime.parse((String) time).withOffsetSameInstant(ZoneOffset.UTC)
                        .toLocalDate().toString();
                return true;
            } catch (IllegalArgumentException | DateTimeParseException e) {
                return false;
            }
        }

        String eventId() {
            try {
                Object doc = Json.parse(bytes);
                Object id = doc instanceof Map ? ((Map<?, ?>) doc).get("event_id") : null;
                return id instanceof String ? (String) id : null;
            } catch (IllegalArgumentException e) {
                return null;
            }
        }
    }

    /** What waits in the queue. */
    abstract static class Item {
        final long nanos = System.nanoTime(); // when it was queued, for the batch age

        abstract long size();

        abstract boolean isProgress();

        abstract Line encode();
    }

    /** A wire-form event the caller handed over, already encoded (the encoding is the copy). */
    static final class Encoded extends Item {
        final Line line;
        final boolean progress;

        Encoded(Line line, boolean progress) {
            this.line = line;
            this.progress = progress;
        }

        @Override
        long size() {
            return line.bytes.length + 64;
        }

        @Override
        boolean isProgress() {
            return progress;
        }

        @Override
        Line encode() {
            return line;
        }
    }

    /** The parts every event of one entity shares, encoded once when it starts. */
    static final class Head {
        final byte[] json; // ,"site_id":...,"app":{...},"entity":{...},"source":{...}
        final String siteId;

        Head(String siteId, App app, String type, String id, String parentId, String businessKey,
             String subKey) {
            this.siteId = siteId;
            Json.Out o = new Json.Out(256);
            o.ascii(",\"schema_version\":1,\"site_id\":").string(siteId);
            o.ascii(",\"app\":{\"name\":").string(app.name());
            if (app.version() != null) {
                o.ascii(",\"version\":").string(app.version());
            }
            if (app.appId() != null) {
                o.ascii(",\"app_id\":").string(app.appId());
            }
            o.ascii("},\"entity\":{\"type\":").string(type).ascii(",\"id\":").string(id);
            if (parentId != null) {
                o.ascii(",\"parent_id\":").string(parentId);
            }
            if (businessKey != null) {
                o.ascii(",\"business_key\":").string(businessKey);
            }
            if (subKey != null) {
                o.ascii(",\"sub_key\":").string(subKey);
            }
            o.ascii("},\"source\":").raw(SOURCE);
            json = o.toBytes();
        }
    }

    /** A started/progress/finished/failed event of a monitored entity, encoded later. */
    static final class Lifecycle extends Item {
        final Head head;
        final String kind;
        final long epochMicros;
        final double duration; // NaN: no metrics (started)
        final double progress; // NaN: none
        final double cpuUser; // NaN: not an end event
        final double cpuSystem;
        final double memMaxMb;
        final byte[] metadata; // compact JSON, null for none
        final String[] error; // type, message, stack (null entries allowed), or null

        Lifecycle(Head head, String kind, long epochMicros, double duration, double progress,
                  double cpuUser, double cpuSystem, double memMaxMb, byte[] metadata, String[] error) {
            this.head = head;
            this.kind = kind;
            this.epochMicros = epochMicros;
            this.duration = duration;
            this.progress = progress;
            this.cpuUser = cpuUser;
            this.cpuSystem = cpuSystem;
            this.memMaxMb = memMaxMb;
            this.metadata = metadata;
            this.error = error;
        }

        @Override
        long size() {
            return head.json.length + (metadata == null ? 0 : metadata.length) + 256
                    + (error == null ? 0 : 64 + length(error[1]) + length(error[2]));
        }

        private static int length(String s) {
            return s == null ? 0 : s.length();
        }

        @Override
        boolean isProgress() {
            return kind.equals("progress");
        }

        @Override
        Line encode() {
            Json.Out o = new Json.Out(head.json.length + (metadata == null ? 0 : metadata.length) + 256);
            String time = time(epochMicros);
            o.ascii("{\"event_id\":\"").ascii(Ids.uuid4()).ascii("\",\"kind\":\"").ascii(kind)
                    .ascii("\",\"time\":\"").ascii(time).raw((byte) '"');
            o.raw(head.json);
            if (!Double.isNaN(duration)) {
                o.ascii(",\"metrics\":{\"duration_s\":").number(duration);
                if (!Double.isNaN(cpuUser)) {
                    o.ascii(",\"cpu_user_s\":").number(cpuUser);
                    o.ascii(",\"cpu_system_s\":").number(cpuSystem);
                    o.ascii(",\"mem_max_mb\":").number(memMaxMb);
                }
                if (!Double.isNaN(progress)) {
                    o.ascii(",\"progress\":").number(progress);
                }
                o.raw((byte) '}');
            }
            if (metadata != null) {
                o.ascii(",\"metadata\":").raw(metadata);
            }
            if (error != null) {
                o.ascii(",\"error\":{\"type\":").string(error[0]);
                if (error[1] != null) {
                    o.ascii(",\"message\":").string(error[1]);
                }
                if (error[2] != null) {
                    o.ascii(",\"stack\":").string(error[2]);
                }
                o.raw((byte) '}');
            }
            o.ascii("}\n");
            return new Line(o.toBytes(), head.siteId, time.substring(0, 10));
        }
    }

    // ---- source and time ----------------------------------------------------------------

    static final byte[] SOURCE = source();

    private static byte[] source() {
        String host;
        try {
            host = InetAddress.getLocalHost().getHostName();
        } catch (UnknownHostException e) {
            String fromEnv = System.getenv("HOSTNAME");
            host = fromEnv != null ? fromEnv : "unknown";
        }
        if (host.length() > 256) {
            host = host.substring(0, 256);
        }
        Json.Out o = new Json.Out(128);
        o.ascii("{\"host\":").string(host).ascii(",\"pid\":").ascii(Long.toString(ProcessHandle.current().pid()))
                .ascii(",\"sdk\":").string(SDK_NAME).ascii(",\"sdk_version\":").string(SDK_VERSION).raw((byte) '}');
        return o.toBytes();
    }

    /** Microseconds since the epoch, now. */
    static long nowMicros() {
        java.time.Instant now = java.time.Instant.now();
        return now.getEpochSecond() * 1_000_000L + now.getNano() / 1000;
    }

    /** RFC 3339 UTC with Z and six fraction digits. */
    static String time(long epochMicros) {
        long seconds = Math.floorDiv(epochMicros, 1_000_000L);
        int micros = (int) Math.floorMod(epochMicros, 1_000_000L);
        LocalDateTime t = LocalDateTime.ofEpochSecond(seconds, 0, ZoneOffset.UTC);
        char[] c = "0000-00-00T00:00:00.000000Z".toCharArray();
        digits(c, 0, 4, t.getYear());
        digits(c, 5, 2, t.getMonthValue());
        digits(c, 8, 2, t.getDayOfMonth());
        digits(c, 11, 2, t.getHour());
        digits(c, 14, 2, t.getMinute());
        digits(c, 17, 2, t.getSecond());
        digits(c, 20, 6, micros);
        return new String(c);
    }

    private static void digits(char[] c, int at, int width, int value) {
        for (int i = at + width - 1; i >= at; i--) {
            c[i] = (char) ('0' + value % 10);
            value /= 10;
        }
    }

    /** Process CPU and the JVM's peak memory, for the end of a job (management beans). */
    static double memMaxMb() {
        long peak = 0;
        for (java.lang.management.MemoryPoolMXBean pool : ManagementFactory.getMemoryPoolMXBeans()) {
            java.lang.management.MemoryUsage u = pool.getPeakUsage();
            if (u != null) {
                peak += u.getUsed();
            }
        }
        return peak / 1048576.0;
    }
}
