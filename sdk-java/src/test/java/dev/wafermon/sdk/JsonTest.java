package dev.wafermon.sdk;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;

/** The hand-written JSON against Jackson, an independent parser. */
class JsonTest {
    static final ObjectMapper JACKSON = new ObjectMapper();

    @Test
    void escapesWhatJsonRequiresAndRoundTrips() throws Exception {
        String nasty = "quote \" backslash \\ tab \t newline \n U+0001 \u0001 é 𝄞 del \u007f";
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("s", nasty);
        m.put("n", 42L);
        m.put("d", 0.5);
        m.put("whole", 2.0);
        m.put("big", 1e300);
        m.put("nan", Double.NaN);
        m.put("list", List.of(1, "two", Map.of("three", true)));
        m.put("null", null);
        m.put("arr", new Object[] {"x", 1});
        String text = Json.write(m);
        JsonNode back = JACKSON.readTree(text);
        assertEquals(nasty, back.get("s").asText());
        assertEquals(42, back.get("n").asLong());
        assertEquals(0.5, back.get("d").asDouble());
        assertEquals("2.0", back.get("whole").toString());
        assertEquals(1e300, back.get("big").asDouble());
        assertTrue(back.get("nan").isNull(), "non-finite numbers become null");
        assertEquals("two", back.at("/list/1").asText());
        assertTrue(back.at("/list/2/three").asBoolean());
        assertTrue(back.get("null").isNull());
        assertEquals("x", back.at("/arr/0").asText());
        assertTrue(text.contains("\\u0001") && text.contains("\\t") && text.contains("é"), text);
        assertEquals(m.get("s"), ((Map<?, ?>) Json.parse(text)).get("s"));
    }

    @Test
    void compactFormHasTheSameBytesAsTheCoresMeasure() {
        // orjson.dumps({"blob": "é"}) == b'{"blob":"\xc3\xa9"}': 13 bytes, raw UTF-8, no spaces
        byte[] b = Json.bytes(Map.of("blob", "é"));
        assertEquals("{\"blob\":\"é\"}", new String(b, StandardCharsets.UTF_8));
        assertEquals(13, b.length);
    }

    @Test
    void loneSurrogatesBecomeTheReplacementCharacter() throws Exception {
        String text = Json.write("a\ud800b");
        assertEquals("a\ufffdb", JACKSON.readTree(text).asText());
    }

    @Test
    void parsesNumbersAsLongOrDouble() {
        List<?> v = (List<?>) Json.parse("[1, -2, 1.5, 1e3, 12345678901234567890, {\"a\": null}]");
        assertEquals(1L, v.get(0));
        assertEquals(-2L, v.get(1));
        assertEquals(1.5, v.get(2));
        assertEquals(1000.0, v.get(3));
        assertEquals(new java.math.BigInteger("12345678901234567890"), v.get(4));
        assertTrue(((Map<?, ?>) v.get(5)).containsKey("a"));
    }

    @Test
    void refusesMalformedInputNamingTheOffset() {
        for (String bad : Arrays.asList("{", "[1,]", "{\"a\" 1}", "\"\u0001\"", "01x", "01", "-007", "nul", "{} {}", "\"\\q\"")) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Json.parse(bad), bad);
            assertTrue(e.getMessage().startsWith("invalid JSON at offset"), e.getMessage());
        }
        String deep = "[".repeat(100) + "]".repeat(100);
        assertThrows(IllegalArgumentException.class, () -> Json.parse(deep));
    }
}
