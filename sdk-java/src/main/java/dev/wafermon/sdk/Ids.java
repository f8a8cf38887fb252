package dev.wafermon.sdk;

import java.security.SecureRandom;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Ids from a CSPRNG ({@link SecureRandom}), drawn 4 KiB at a time so an id costs a copy, not
 * a system call.
 *
 * <ul>
 *   <li>{@link #uuid4()} for {@code event_id}: the wire contract (conformance/PROTOCOL.md)
 *       says a fresh lower-case UUID version 4, and the conformance runner checks the version.
 *   <li>{@link #uuid7()} for entity ids (jobs, subjobs): version 7 puts the start time in
 *       the first 48 bits, so ids sort by when the job started (a store's index stays local).
 * </ul>
 */
final class Ids {
    private static final SecureRandom RANDOM = new SecureRandom();
    private static final ReentrantLock LOCK = new ReentrantLock();
    private static final byte[] POOL = new byte[4096];
    private static int used = POOL.length;
    private static final char[] HEX = "0123456789abcdef".toCharArray();

    private Ids() {}

    private static void random16(byte[] out) {
        LOCK.lock();
        try {
            if (used + 16 > POOL.length) {
                RANDOM.nextBytes(POOL);
                used = 0;
            }
            System.arraycopy(POOL, used, out, 0, 16);
            java.util.Arrays.fill(POOL, used, used + 16, (byte) 0); // an id never lingers in the pool
            used += 16;
        } finally {
            LOCK.unlock();
        }
    }

    /** A random UUID version 4 (RFC 9562 variant) as lower-case text. */
    static String uuid4() {
        byte[] b = new byte[16];
        random16(b);
        b[6] = (byte) ((b[6] & 0x0f) | 0x40);
        b[8] = (byte) ((b[8] & 0x3f) | 0x80);
        return text(b);
    }

    /** A UUID version 7: 48 bits of Unix milliseconds, then 74 random bits. */
    static String uuid7() {
        byte[] b = new byte[16];
        random16(b);
        long ms = System.currentTimeMillis();
        for (int i = 0; i < 6; i++) {
            b[i] = (byte) (ms >>> (40 - 8 * i));
        }
        b[6] = (byte) ((b[6] & 0x0f) | 0x70);
        b[8] = (byte) ((b[8] & 0x3f) | 0x80);
        return text(b);
    }

    private static String text(byte[] b) {
        char[] c = new char[36];
        int j = 0;
        for (int i = 0; i < 16; i++) {
            if (i == 4 || i == 6 || i == 8 || i == 10) {
                c[j++] = '-';
            }
            c[j++] = HEX[(b[i] >> 4) & 15];
            c[j++] = HEX[b[i] & 15];
        }
        return new String(c);
    }
}
