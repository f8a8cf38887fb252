package dev.wafermon.sdk;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SpoolTest {
    static List<Wire.Line> lines(int n, int size) {
        List<Wire.Line> out = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            out.add(new Wire.Line(("{\"n\":\"" + "x".repeat(size) + "\"}\n").getBytes(StandardCharsets.UTF_8), null, null));
        }
        return out;
    }

    @Test
    void theOldestFilesGoWhenTheSpoolIsAboveItsSize(@TempDir Path tmp) throws Exception {
        Spool spool = new Spool(tmp, "sidecar", 10_000, Duration.ofDays(1));
        long lost = 0;
        for (int i = 0; i < 5; i++) {
            lost += spool.write(lines(3, 1000)); // about 3 KB a file
        }
        List<Path> left = spool.files();
        assertEquals(3, left.size(), "three files fit in 10,000 bytes");
        assertEquals(6, lost, "two files of three events were dropped, and counted");
        long total = 0;
        for (Path f : left) {
            total += Files.size(f);
        }
        assertTrue(total <= 10_000);
    }

    @Test
    void filesOlderThanTheMaximumAgeGo(@TempDir Path tmp) throws Exception {
        Spool spool = new Spool(tmp, "direct", 1 << 30, Duration.ofMillis(200));
        spool.write(lines(2, 10));
        Thread.sleep(300);
        long lost = spool.write(lines(1, 10)); // the first file is now too old
        assertEquals(2, lost);
        assertEquals(1, spool.files().size());
    }

    @Test
    void replayDeletesOnlyWhatWasDelivered(@TempDir Path tmp) throws Exception {
        Spool spool = new Spool(tmp, "sidecar", 1 << 30, Duration.ofDays(1));
        spool.write(lines(2, 10));
        Path file = spool.files().get(0);
        assertEquals(Spool.Outcome.UNAVAILABLE, spool.replay(file, l -> Spool.Outcome.UNAVAILABLE));
        assertTrue(Files.exists(file));
        List<Integer> seen = new ArrayList<>();
        assertEquals(Spool.Outcome.DELIVERED, spool.replay(file, l -> {
            seen.add(l.size());
            return Spool.Outcome.DELIVERED;
        }));
        assertEquals(List.of(2), seen);
        assertTrue(spool.isEmpty());
    }
}
