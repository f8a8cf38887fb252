package dev.wafermon.sdk;

import java.math.BigDecimal;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The SDK's JSON: a compact UTF-8 writer and a strict reader, for the event schema's values.
 *
 * <p>Why not Jackson: an event is a fixed, flat structure plus free-form metadata of plain
 * values, and the SDK must not put a JSON library (and its version conflicts) on every
 * application's classpath. The writer produces exactly the compact form the core measures the
 * metadata cap against ({@code orjson.dumps}: no spaces, raw UTF-8, {@code \"} {@code \\} and
 * control characters escaped), so the 16384-byte cap is checked in bytes, here, the same way.
 *
 * <p>Values read: objects as {@link LinkedHashMap} (order kept), arrays as {@link ArrayList},
 * strings, {@code Long} for integers that fit (else {@link BigInteger}), {@code Double} for
 * the rest, {@code Boolean} and {@code null}. Values written: those, any {@link Number},
 * {@link Map} (keys as text), {@link Iterable}, {@code Object[]}; non-finite doubles as
 * {@code null}; anything else as its {@code toString()} (as the Python SDK does).
 */
public final class Json {
    private Json() {}

    /** Nesting deeper than this is refused when reading (bounded work per input). */
    static final int MAX_DEPTH = 64;

    /** JSON text of a value, compact. */
    public static String write(Object value) {
        Out out = new Out(64);
        out.value(value, 0);
        return new String(out.buf, 0, out.len, StandardCharsets.UTF_8);
    }

    /** Compact UTF-8 JSON of a value. */
    static byte[] bytes(Object value) {
        Out out = new Out(64);
        out.value(value, 0);
        return out.toBytes();
    }

    /**
     * Parses one JSON text.
     *
     * @throws IllegalArgumentException naming the offset and what was wrong
     */
    public static Object parse(String text) {
        Reader r = new Reader(text);
        r.space();
        Object v = r.value(0);
        r.space();
        if (r.pos != text.length()) {
            throw r.error("unexpected text after the JSON value");
        }
        return v;
    }

    /** Parses UTF-8 JSON bytes. */
    static Object parse(byte[] utf8) {
        return parse(new String(utf8, StandardCharsets.UTF_8));
    }

    // ---- writer ------------------------------------------------------------------------

    /** A growable UTF-8 buffer that JSON values are written to. */
    static final class Out {
        byte[] buf;
        int len;

        Out(int capacity) {
            buf = new byte[capacity];
        }

        byte[] toBytes() {
            return Arrays.copyOf(buf, len);
        }

        void ensure(int more) {
            if (len + more > buf.length) {
                buf = Arrays.copyOf(buf, Math.max(buf.length * 2, len + more));
            }
        }

        Out raw(byte b) {
            ensure(1);
            buf[len++] = b;
            return this;
        }

        /** ASCII text as it is (names, numbers, literals). */
        Out ascii(String s) {
            int n = s.length();
            ensure(n);
            for (int i = 0; i < n; i++) {
                buf[len++] = (byte) s.charAt(i);
            }
            return this;
        }

        Out raw(byte[] bytes) {
            ensure(bytes.length);
            System.arraycopy(bytes, 0, buf, len, bytes.length);
            len += bytes.length;
            return this;
        }

        private static final byte[] HEX = "0123456789abcdef".getBytes(StandardCharsets.US_ASCII);

        /** A JSON string: quotes, escapes, UTF-8; a lone surrogate becomes U+FFFD. */
        Out string(String s) {
            int n = s.length();
            ensure(6 * n + 2); // the worst case (six bytes per char), so no check per char
            byte[] b = buf;
            int at = len;
            b[at++] = '"';
            for (int i = 0; i < n; i++) {
                char c = s.charAt(i);
                if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
                    b[at++] = (byte) c;
                } else if (c < 0x80) {
                    b[at++] = '\\';
                    switch (c) {
                        case '"': b[at++] = '"'; break;
                        case '\\': b[at++] = '\\'; break;
                        case '\n': b[at++] = 'n'; break;
                        case '\r': b[at++] = 'r'; break;
                        case '\t': b[at++] = 't'; break;
                        case '\b': b[at++] = 'b'; break;
                        case '\f': b[at++] = 'f'; break;
                        default:
                            b[at++] = 'u';
                            b[at++] = '0';
                            b[at++] = '0';
                            b[at++] = HEX[c >> 4];
                            b[at++] = HEX[c & 15];
                    }
                } else if (c < 0x800) {
                    b[at++] = (byte) (0xc0 | (c >> 6));
                    b[at++] = (byte) (0x80 | (c & 0x3f));
                } else if (Character.isHighSurrogate(c) && i + 1 < n
                        && Character.isLowSurrogate(s.charAt(i + 1))) {
                    int cp = Character.toCodePoint(c, s.charAt(++i));
                    b[at++] = (byte) (0xf0 | (cp >> 18));
                    b[at++] = (byte) (0x80 | ((cp >> 12) & 0x3f));
                    b[at++] = (byte) (0x80 | ((cp >> 6) & 0x3f));
                    b[at++] = (byte) (0x80 | (cp & 0x3f));
                } else {
                    if (Character.isSurrogate(c)) {
                        c = '\ufffd';
                    }
                    b[at++] = (byte) (0xe0 | (c >> 12));
                    b[at++] = (byte) (0x80 | ((c >> 6) & 0x3f));
                    b[at++] = (byte) (0x80 | (c & 0x3f));
                }
            }
            b[at++] = '"';
            len = at;
            return this;
        }

        Out number(double d) {
            if (!Double.isFinite(d)) {
                return ascii("null");
            }
            if (d == Math.rint(d) && Math.abs(d) < 1e15) {
                // 2.0 -> "2.0" as Python writes a float; an integral double stays a float.
                return ascii(Long.toString((long) d)).ascii(".0");
            }
            return ascii(Double.toString(d));
        }

        void value(Object v, int depth) {
            if (depth > MAX_DEPTH) {
                throw new IllegalArgumentException("nested more than " + MAX_DEPTH + " levels deep");
            }
            if (v == null) {
                ascii("null");
            } else if (v instanceof String) {
                string((String) v);
            } else if (v instanceof Boolean) {
                ascii(((Boolean) v) ? "true" : "false");
            } else if (v instanceof Long || v instanceof Integer || v instanceof Short
                    || v instanceof Byte || v instanceof BigInteger) {
                ascii(v.toString());
            } else if (v instanceof Double || v instanceof Float) {
                number(((Number) v).doubleValue());
            } else if (v instanceof BigDecimal) {
                ascii(((BigDecimal) v).toString());
            } else if (v instanceof Number) {
                number(((Number) v).doubleValue());
            } else if (v instanceof Map) {
                raw((byte) '{');
                boolean first = true;
                for (Map.Entry<?, ?> e : ((Map<?, ?>) v).entrySet()) {
                    if (!first) {
                        raw((byte) ',');
                    }
                    first = false;
                    string(String.valueOf(e.getKey()));
                    raw((byte) ':');
                    value(e.getValue(), depth + 1);
                }
                raw((byte) '}');
            } else if (v instanceof Iterable) {
                raw((byte) '[');
                boolean first = true;
                for (Object item : (Iterable<?>) v) {
                    if (!first) {
                        raw((byte) ',');
                    }
                    first = false;
                    value(item, depth + 1);
                }
                raw((byte) ']');
            } else if (v instanceof Object[]) {
                value(Arrays.asList((Object[]) v), depth);
            } else {
                string(v.toString());
            }
        }
    }

    // ---- reader ------------------------------------------------------------------------

    private static final class Reader {
        final String s;
        int pos;

        Reader(String s) {
            this.s = s;
        }

        IllegalArgumentException error(String why) {
            return new IllegalArgumentException("invalid JSON at offset " + pos + ": " + why);
        }

        void space() {
            while (pos < s.length()) {
                char c = s.charAt(pos);
                if (c != ' ' && c != '\n' && c != '\r' && c != '\t') {
                    return;
                }
                pos++;
            }
        }

        Object value(int depth) {
            if (depth > MAX_DEPTH) {
                throw error("nested more than " + MAX_DEPTH + " levels deep");
            }
            if (pos >= s.length()) {
                throw error("unexpected end");
            }
            char c = s.charAt(pos);
            switch (c) {
                case '{': return object(depth);
                case '[': return array(depth);
                case '"': return string();
                case 't': return literal("true", Boolean.TRUE);
                case 'f': return literal("false", Boolean.FALSE);
                case 'n': return literal("null", null);
                default:
                    if (c == '-' || (c >= '0' && c <= '9')) {
                        return number();
                    }
                    throw error("unexpected character '" + c + "'");
            }
        }

        Object literal(String word, Object v) {
            if (!s.startsWith(word, pos)) {
                throw error("expected " + word);
            }
            pos += word.length();
            return v;
        }

        Map<String, Object> object(int depth) {
            Map<String, Object> m = new LinkedHashMap<>();
            pos++;
            space();
            if (pos < s.length() && s.charAt(pos) == '}') {
                pos++;
                return m;
            }
            while (true) {
                space();
                if (pos >= s.length() || s.charAt(pos) != '"') {
                    throw error("expected a string key");
                }
                String key = string();
                space();
                if (pos >= s.length() || s.charAt(pos) != ':') {
                    throw error("expected ':'");
                }
                pos++;
                space();
                m.put(key, value(depth + 1));
                space();
                if (pos >= s.length()) {
                    throw error("unexpected end in an object");
                }
                char c = s.charAt(pos++);
                if (c == '}') {
                    return m;
                }
                if (c != ',') {
                    pos--;
                    throw error("expected ',' or '}'");
                }
            }
        }

        List<Object> array(int depth) {
            List<Object> a = new ArrayList<>();
            pos++;
            space();
            if (pos < s.length() && s.charAt(pos) == ']') {
                pos++;
                return a;
            }
            while (true) {
                space();
                a.add(value(depth + 1));
                space();
                if (pos >= s.length()) {
                    throw error("unexpected end in an array");
                }
                char c = s.charAt(pos++);
                if (c == ']') {
                    return a;
                }
                if (c != ',') {
                    pos--;
                    throw error("expected ',' or ']'");
                }
            }
        }

        String string() {
            pos++; // opening quote
            StringBuilder b = null;
            int start = pos;
            while (true) {
                if (pos >= s.length()) {
                    throw error("unterminated string");
                }
                char c = s.charAt(pos);
                if (c == '"') {
                    String out = b == null ? s.substring(start, pos)
                            : b.append(s, start, pos).toString();
                    pos++;
                    return out;
                }
                if (c < 0x20) {
                    throw error("control character in a string");
                }
                if (c == '\\') {
                    if (b == null) {
                        b = new StringBuilder();
                    }
                    b.append(s, start, pos);
                    pos++;
                    if (pos >= s.length()) {
                        throw error("unterminated escape");
                    }
                    char e = s.charAt(pos++);
                    switch (e) {
                        case '"': b.append('"'); break;
                        case '\\': b.append('\\'); break;
                        case '/': b.append('/'); break;
                        case 'b': b.append('\b'); break;
                        case 'f': b.append('\f'); break;
                        case 'n': b.append('\n'); break;
                        case 'r': b.append('\r'); break;
                        case 't': b.append('\t'); break;
                        case 'u':
                            if (pos + 4 > s.length()) {
                                throw error("short \\u escape");
                            }
                            try {
                                b.append((char) Integer.parseInt(s.substring(pos, pos + 4), 16));
                            } catch (NumberFormatException ex) {
                                throw error("bad \\u escape");
                            }
                            pos += 4;
                            break;
                        default:
                            throw error("bad escape '\\" + e + "'");
                    }
                    start = pos;
                } else {
                    pos++;
                }
            }
        }

        Object number() {
            int start = pos;
            if (s.charAt(pos) == '-') {
                pos++;
            }
            if (pos + 1 < s.length() && s.charAt(pos) == '0' && Character.isDigit(s.charAt(pos + 1))) {
                throw error("a number with a leading zero");
            }
            boolean integral = true;
            int digits = 0;
            while (pos < s.length()) {
                char c = s.charAt(pos);
                if (c >= '0' && c <= '9') {
                    digits++;
                } else if (c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-') {
                    integral = false;
                } else {
                    break;
                }
                pos++;
            }
            String text = s.substring(start, pos);
            if (digits == 0) {
                throw error("bad number '" + text + "'");
            }
            try {
                if (integral) {
                    return text.length() < 19 ? (Object) Long.parseLong(text) : toLong(new BigInteger(text));
                }
                double d = Double.parseDouble(text);
                if (!Double.isFinite(d)) {
                    throw error("number out of range '" + text + "'");
                }
                return d;
            } catch (NumberFormatException ex) {
                throw error("bad number '" + text + "'");
            }
        }

        private static Object toLong(BigInteger big) {
            return big.bitLength() < 64 ? (Object) big.longValue() : big;
        }
    }
}
