package dev.wafermon.sdk;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashSet;
import java.util.Set;
import java.util.UUID;

import org.junit.jupiter.api.Test;

class IdsTest {
    @Test
    void eventIdsAreVersion4AndEntityIdsVersion7() {
        Set<String> seen = new HashSet<>();
        for (int i = 0; i < 10_000; i++) {
            String v4 = Ids.uuid4();
            String v7 = Ids.uuid7();
            assertEquals(4, UUID.fromString(v4).version());
            assertEquals(2, UUID.fromString(v4).variant());
            assertEquals(7, UUID.fromString(v7).version());
            assertTrue(v4.equals(v4.toLowerCase()) && v4.length() == 36);
            assertTrue(seen.add(v4) && seen.add(v7));
        }
        long ms = Long.parseLong(Ids.uuid7().replace("-", "").substring(0, 12), 16);
        assertTrue(Math.abs(System.currentTimeMillis() - ms) < 5000, "v7 carries the time");
    }
}
