package dev.wafermon.sdk;

import java.io.IOException;
import java.net.URI;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.Function;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * What a client runs with: defaults, then a settings file, then {@code WAFERMON_*} variables,
 * then the builder's values (later wins). Names and defaults are the ones every wafermon SDK
 * shares (conformance/PROTOCOL.md); each setting has one snake_case name used as the file key
 * and, in capitals after {@code WAFERMON_}, as the environment variable. Loading checks all of
 * them and throws {@link WafermonConfigException} listing every fault; it never opens a
 * connection and never prints the token.
 */
public final class Settings {
    /** Where events go. */
    public enum Mode { SIDECAR, DIRECT, BOTH }

    /** The variable naming a settings file (.json, .yaml or .yml), as in the Python SDK. */
    public static final String FILE_ENV = "WAFERMON_SDK_CONFIG";
    static final Pattern SITE_ID = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]{0,63}");
    private static final Pattern QUANTITY = Pattern.compile("\\s*([0-9]+(?:\\.[0-9]+)?)\\s*([A-Za-z]*)\\s*");
    private static final Map<String, Double> TIME_UNITS = Map.of(
            "", 1.0, "ms", 0.001, "s", 1.0, "m", 60.0, "h", 3600.0, "d", 86400.0);
    private static final Map<String, Double> SIZE_UNITS = Map.of(
            "", 1.0, "b", 1.0, "kb", 1e3, "mb", 1e6, "gb", 1e9,
            "kib", 1024.0, "mib", 1048576.0, "gib", 1073741824.0);

    final Mode mode;
    final String sidecarUrl;
    final String token; // never logged; toString() leaves it out
    final String siteId;
    final String directUrl;
    final Path fileRoot; // direct mode to file://
    final String s3Bucket;
    final String s3Prefix;
    final String s3Endpoint;
    final String s3Region;
    final Path spoolDir;
    final long spoolMaxBytes;
    final Duration spoolMaxAge;
    final int queueSize;
    final long queueMaxBytes;
    final Duration blockTimeout;
    final int batchSize;
    final Duration flushInterval;
    final Duration timeout;
    final int maxRetries;
    final Duration retryBaseDelay;
    final Duration retryMaxDelay;
    final Duration replayInterval;
    final Duration flushTimeout;
    final boolean shutdownHook;
    final boolean console; // debug: each event's wire JSON to stderr as it is sent
    final String awsAccessKeyId; // from AWS_* in the environment map; else the AWS default chain
    final String awsSecretAccessKey; // never logged
    final String awsSessionToken;

    private Settings(Map<String, Object> v) {
        mode = (Mode) v.getOrDefault("mode", Mode.SIDECAR);
        sidecarUrl = (String) v.getOrDefault("sidecar_url", "http://127.0.0.1:17000");
        token = (String) v.get("token");
        siteId = (String) v.get("site_id");
        directUrl = (String) v.get("direct_url");
        spoolDir = (Path) v.getOrDefault("spool_dir", defaultSpoolDir());
        spoolMaxBytes = (Long) v.getOrDefault("spool_max_bytes", 1L << 30);
        spoolMaxAge = (Duration) v.getOrDefault("spool_max_age", Duration.ofDays(7));
        queueSize = (Integer) v.getOrDefault("queue_size", 10_000);
        queueMaxBytes = (Long) v.getOrDefault("queue_max_bytes", 64L << 20);
        blockTimeout = (Duration) v.getOrDefault("block_timeout", Duration.ofMillis(100));
        batchSize = (Integer) v.getOrDefault("batch_size", 500);
        flushInterval = (Duration) v.getOrDefault("flush_interval", Duration.ofMillis(200));
        timeout = (Duration) v.getOrDefault("timeout", Duration.ofSeconds(10));
        maxRetries = (Integer) v.getOrDefault("max_retries", 5);
        retryBaseDelay = (Duration) v.getOrDefault("retry_base_delay", Duration.ofMillis(200));
        retryMaxDelay = (Duration) v.getOrDefault("retry_max_delay", Duration.ofSeconds(30));
        replayInterval = (Duration) v.getOrDefault("replay_interval", Duration.ofSeconds(1));
        flushTimeout = (Duration) v.getOrDefault("flush_timeout", Duration.ofSeconds(10));
        shutdownHook = (Boolean) v.getOrDefault("shutdown_hook", Boolean.TRUE);
        console = (Boolean) v.getOrDefault("console", Boolean.FALSE);
        s3Region = (String) v.getOrDefault("s3_region", "us-east-1");
        s3Endpoint = (String) v.get("s3_endpoint");
        awsAccessKeyId = (String) v.get(AWS_KEY);
        awsSecretAccessKey = (String) v.get(AWS_SECRET);
        awsSessionToken = (String) v.get(AWS_SESSION);
        if (directUrl != null && directUrl.startsWith("file:")) {
            fileRoot = Paths.get(URI.create(directUrl));
            s3Bucket = null;
            s3Prefix = null;
        } else if (directUrl != null) {
            URI u = URI.create(directUrl);
            fileRoot = null;
            s3Bucket = u.getHost();
            String p = u.getPath() == null ? "" : u.getPath();
            s3Prefix = p.replaceAll("^/+", "").replaceAll("/+$", "");
        } else {
            fileRoot = null;
            s3Bucket = null;
            s3Prefix = null;
        }
    }

    boolean usesSidecar() {
        return mode != Mode.DIRECT;
    }

    boolean usesDirect() {
        return mode != Mode.SIDECAR;
    }

    /** The site id of the events the SDK makes, or null when none was set. */
    public String siteId() {
        return siteId;
    }

    /** Where events go. */
    public Mode mode() {
        return mode;
    }

    /** The spool folder. */
    public Path spoolDir() {
        return spoolDir;
    }

    /** Default timeout of flush/close, and the time the shutdown hook may take. */
    public Duration flushTimeout() {
        return flushTimeout;
    }

    @Override
    public String toString() {
        return "Settings{mode=" + mode + ", sidecar_url=" + sidecarUrl + ", token="
                + (token == null ? "none" : "***") + ", site_id=" + siteId + ", direct_url="
                + directUrl + ", spool_dir=" + spoolDir + ", queue_size=" + queueSize
                + ", batch_size=" + batchSize + ", flush_interval=" + flushInterval + "}";
    }

    static Path defaultSpoolDir() {
        String cache = System.getenv("XDG_CACHE_HOME");
        Path base = cache != null && !cache.isBlank() ? Paths.get(cache)
                : Paths.get(System.getProperty("user.home"), ".cache");
        return base.resolve("wafermon-sdk-java").resolve("spool");
    }

    // ---- parsing ------------------------------------------------------------------------

    private static final Map<String, Function<Object, Object>> PARSERS = new LinkedHashMap<>();

    static {
        PARSERS.put("mode", Settings::parseMode);
        PARSERS.put("sidecar_url", Settings::parseUrl);
        PARSERS.put("token", v -> v.toString().isEmpty() ? null : v.toString());
        PARSERS.put("site_id", Settings::parseSiteId);
        PARSERS.put("direct_url", Settings::parseDirectUrl);
        PARSERS.put("spool_dir", Settings::parsePath);
        PARSERS.put("spool_max_bytes", v -> atLeast(parseSize(v), 1L << 20, v, "1MiB"));
        PARSERS.put("spool_max_age", v -> positive(parseDuration(v), v));
        PARSERS.put("queue_size", v -> (int) parseInteger(v, 1, 100_000_000));
        PARSERS.put("queue_max_bytes", v -> atLeast(parseSize(v), 1L << 16, v, "64KiB"));
        PARSERS.put("block_timeout", Settings::parseDuration);
        PARSERS.put("batch_size", v -> (int) parseInteger(v, 1, 1_000_000));
        PARSERS.put("flush_interval", v -> positive(parseDuration(v), v));
        PARSERS.put("timeout", v -> positive(parseDuration(v), v));
        PARSERS.put("max_retries", v -> (int) parseInteger(v, 0, 1000));
        PARSERS.put("retry_base_delay", v -> positive(parseDuration(v), v));
        PARSERS.put("retry_max_delay", v -> positive(parseDuration(v), v));
        PARSERS.put("replay_interval", v -> positive(parseDuration(v), v));
        PARSERS.put("flush_timeout", Settings::parseDuration);
        PARSERS.put("shutdown_hook", Settings::parseBoolean);
        PARSERS.put("console", Settings::parseBoolean);
        PARSERS.put("s3_endpoint", Settings::parseUrl);
        PARSERS.put("s3_region", v -> v.toString().trim());
    }

    private static final String AWS_KEY = "AWS_ACCESS_KEY_ID";
    private static final String AWS_SECRET = "AWS_SECRET_ACCESS_KEY";
    private static final String AWS_SESSION = "AWS_SESSION_TOKEN";

    /** {@code WAFERMON_} + the name in capitals. */
    static String envName(String setting) {
        return "WAFERMON_" + setting.toUpperCase(Locale.ROOT);
    }

    /**
     * Defaults &lt; file (given, or named by {@code WAFERMON_SDK_CONFIG}) &lt; environment &lt;
     * overrides (setting name to value).
     */
    static Settings load(Path file, Map<String, String> env, Map<String, Object> overrides) {
        List<String> problems = new ArrayList<>();
        Map<String, Object> values = new LinkedHashMap<>();
        Map<String, String> givenAs = new LinkedHashMap<>();
        if (file == null && env.get(FILE_ENV) != null && !env.get(FILE_ENV).isBlank()) {
            file = Paths.get(env.get(FILE_ENV).trim());
        }
        if (file != null) {
            for (Map.Entry<String, Object> e : readFile(file).entrySet()) {
                take(e.getKey(), e.getValue(), file + ": " + e.getKey(), values, givenAs, problems);
            }
        }
        for (String name : PARSERS.keySet()) {
            String raw = env.get(envName(name));
            if (raw != null && (!raw.isBlank() || name.equals("token"))) {
                take(name, raw, envName(name), values, givenAs, problems);
            }
        }
        for (Map.Entry<String, Object> e : overrides.entrySet()) {
            take(e.getKey(), e.getValue(), e.getKey(), values, givenAs, problems);
        }
        Mode mode = (Mode) values.getOrDefault("mode", Mode.SIDECAR);
        if (problems.isEmpty() && mode != Mode.SIDECAR && values.get("direct_url") == null) {
            problems.add("WAFERMON_DIRECT_URL: required when WAFERMON_MODE is "
                    + mode.name().toLowerCase(Locale.ROOT) + " (" + givenAs.getOrDefault("mode", "mode")
                    + "): file:///absolute/path or s3://bucket/prefix");
        }
        if (problems.isEmpty() && values.containsKey("retry_max_delay")
                && ((Duration) values.get("retry_max_delay")).compareTo(
                        (Duration) values.getOrDefault("retry_base_delay", Duration.ofMillis(200))) < 0) {
            problems.add(givenAs.get("retry_max_delay") + ": must not be less than retry_base_delay");
        }
        String direct = (String) values.get("direct_url");
        if (direct != null && direct.startsWith("s3:") && mode != Mode.SIDECAR) {
            for (String name : new String[] {AWS_KEY, AWS_SECRET, AWS_SESSION}) {
                String value = env.get(name);
                if (value != null && !value.isBlank()) {
                    values.put(name, value.trim());
                }
            }
            if (values.containsKey(AWS_KEY) != values.containsKey(AWS_SECRET)) {
                problems.add((values.containsKey(AWS_KEY) ? AWS_SECRET : AWS_KEY)
                        + ": required with " + (values.containsKey(AWS_KEY) ? AWS_KEY : AWS_SECRET)
                        + " for an s3:// WAFERMON_DIRECT_URL");
            }
        }
        if (!problems.isEmpty()) {
            throw new WafermonConfigException(problems);
        }
        return new Settings(values);
    }

    private static void take(String name, Object raw, String where, Map<String, Object> values,
                             Map<String, String> givenAs, List<String> problems) {
        Function<Object, Object> parser = PARSERS.get(name);
        if (parser == null) {
            problems.add(where + ": unknown setting (known: " + String.join(", ", PARSERS.keySet()) + ")");
            return;
        }
        if (raw == null) {
            values.remove(name);
            return;
        }
        try {
            values.put(name, parser.apply(raw));
            givenAs.put(name, where);
        } catch (IllegalArgumentException e) {
            problems.add(where + ": " + e.getMessage());
        }
    }

    static String quote(Object v) {
        return "'" + v + "'";
    }

    private static Object parseMode(Object v) {
        String text = v.toString().trim().toLowerCase(Locale.ROOT);
        switch (text) {
            case "sidecar": return Mode.SIDECAR;
            case "direct": return Mode.DIRECT;
            case "both": return Mode.BOTH;
            default:
                throw new IllegalArgumentException("must be one of sidecar, direct, both, got " + quote(v));
        }
    }

    private static Object parseUrl(Object v) {
        String text = v.toString().trim();
        URI u;
        try {
            u = new URI(text);
        } catch (URISyntaxException e) {
            throw new IllegalArgumentException(
                    "expected an http:// or https:// URL such as http://127.0.0.1:17000, got " + quote(v));
        }
        String scheme = u.getScheme() == null ? "" : u.getScheme().toLowerCase(Locale.ROOT);
        if (!(scheme.equals("http") || scheme.equals("https")) || u.getHost() == null) {
            if ((scheme.equals("http") || scheme.equals("https")) && u.getRawAuthority() != null) {
                throw new IllegalArgumentException("has an invalid host or port: " + quote(v));
            }
            throw new IllegalArgumentException(
                    "expected an http:// or https:// URL such as http://127.0.0.1:17000, got " + quote(v));
        }
        if (u.getPort() > 65535) {
            throw new IllegalArgumentException("has an invalid port: " + quote(v));
        }
        return text.replaceAll("/+$", "");
    }

    private static Object parseSiteId(Object v) {
        String text = v.toString();
        if (!SITE_ID.matcher(text).matches()) {
            throw new IllegalArgumentException("must be 1-64 letters, digits, '.', '_' or '-' "
                    + "starting with a letter or digit, got " + quote(v));
        }
        return text;
    }

    private static final String DIRECT_HINT = "expected file:///absolute/path or s3://bucket/prefix";

    private static Object parseDirectUrl(Object v) {
        String text = v.toString().trim();
        URI u;
        try {
            u = new URI(text);
        } catch (URISyntaxException e) {
            throw new IllegalArgumentException(DIRECT_HINT + ", got " + quote(v));
        }
        String scheme = u.getScheme() == null ? "" : u.getScheme().toLowerCase(Locale.ROOT);
        if (scheme.equals("file")) {
            String host = u.getAuthority();
            String path = u.getPath();
            if ((host != null && !host.isEmpty() && !host.equals("localhost")) || path == null
                    || !path.startsWith("/") || Paths.get(path).normalize().toString().length()
                            != Paths.get(path).toString().length()) {
                throw new IllegalArgumentException(DIRECT_HINT
                        + " (file:// and an absolute path without '..'), got " + quote(v));
            }
            return "file://" + u.getRawPath();
        }
        if (scheme.equals("s3")) {
            String bucket = u.getHost();
            if (bucket == null || !bucket.matches("[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
                    || (u.getPath() != null && u.getPath().contains(".."))) {
                throw new IllegalArgumentException(DIRECT_HINT
                        + " with a valid bucket name (3-63 lower-case letters, digits, '.', '-'), got "
                        + quote(v));
            }
            if (!S3Support.available()) {
                throw new IllegalArgumentException("s3:// needs the AWS SDK v2 module "
                        + "software.amazon.awssdk:s3 (and url-connection-client) on the classpath, "
                        + "an optional dependency of wafermon-sdk; got " + quote(v));
            }
            return text;
        }
        throw new IllegalArgumentException(DIRECT_HINT + ", got " + quote(v));
    }

    private static Object parsePath(Object v) {
        String text = v.toString().trim();
        if (text.isEmpty()) {
            throw new IllegalArgumentException("must not be empty");
        }
        if (text.startsWith("~/")) {
            text = System.getProperty("user.home") + text.substring(1);
        }
        return Paths.get(text);
    }

    static long parseInteger(Object v, long min, long max) {
        long n;
        if (v instanceof Integer || v instanceof Long) {
            n = ((Number) v).longValue();
        } else {
            String text = v.toString().trim();
            if (!text.matches("[+-]?[0-9]{1,18}")) {
                throw new IllegalArgumentException("expected an integer, got " + quote(v));
            }
            n = Long.parseLong(text.startsWith("+") ? text.substring(1) : text);
        }
        if (n < min) {
            throw new IllegalArgumentException("must be at least " + min + ", got " + n);
        }
        if (n > max) {
            throw new IllegalArgumentException("must be at most " + max + ", got " + n);
        }
        return n;
    }

    private static double quantity(Object v, Map<String, Double> units, String what) {
        if (v instanceof Boolean) {
            throw new IllegalArgumentException("expected " + what + ", got a boolean");
        }
        if (v instanceof Number) {
            double d = ((Number) v).doubleValue();
            if (d < 0 || !Double.isFinite(d)) {
                throw new IllegalArgumentException("must not be negative, got " + quote(v));
            }
            return d;
        }
        Matcher m = QUANTITY.matcher(v.toString());
        String unit = m.matches() ? m.group(2).toLowerCase(Locale.ROOT) : null;
        if (unit == null || !units.containsKey(unit)) {
            throw new IllegalArgumentException("expected " + what + ", got " + quote(v));
        }
        return Double.parseDouble(m.group(1)) * units.get(unit);
    }

    static Duration parseDuration(Object v) {
        if (v instanceof Duration) {
            if (((Duration) v).isNegative()) {
                throw new IllegalArgumentException("must not be negative, got " + v);
            }
            return (Duration) v;
        }
        double s = quantity(v, TIME_UNITS, "a duration such as 30, 500ms, 30s, 5m, 1h or 2d");
        return Duration.ofNanos((long) Math.min(s * 1e9, Long.MAX_VALUE / 2.0));
    }

    static long parseSize(Object v) {
        return (long) quantity(v, SIZE_UNITS, "a size such as 1048576, 512KiB, 64MiB or 1GB");
    }

    private static Duration positive(Duration d, Object raw) {
        if (d.isZero()) {
            throw new IllegalArgumentException("must be more than 0, got " + quote(raw));
        }
        return d;
    }

    private static long atLeast(long n, long min, Object raw, String minText) {
        if (n < min) {
            throw new IllegalArgumentException("must be at least " + minText + ", got " + quote(raw));
        }
        return n;
    }

    private static Object parseBoolean(Object v) {
        if (v instanceof Boolean) {
            return v;
        }
        switch (v.toString().trim().toLowerCase(Locale.ROOT)) {
            case "1": case "true": case "yes": case "on": return Boolean.TRUE;
            case "0": case "false": case "no": case "off": return Boolean.FALSE;
            default: throw new IllegalArgumentException("expected true or false, got " + quote(v));
        }
    }

    // ---- settings file ------------------------------------------------------------------

    /**
     * The settings in a JSON (.json) or YAML (.yaml, .yml) file, at the top level or under a
     * {@code wafermon_sdk} key. YAML here is the flat subset settings need ({@code key: value}
     * lines, comments, quoted values, one {@code wafermon_sdk:} section); anything richer is
     * refused with its line number rather than misread. JSON is also YAML, so one file serves
     * every SDK.
     */
    static Map<String, Object> readFile(Path file) {
        String text;
        try {
            text = Files.readString(file, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new WafermonConfigException(List.of(file + ": cannot read settings file: " + e));
        }
        String name = file.getFileName().toString().toLowerCase(Locale.ROOT);
        Object data;
        try {
            if (name.endsWith(".json") || text.stripLeading().startsWith("{")) {
                data = Json.parse(text);
            } else if (name.endsWith(".yaml") || name.endsWith(".yml")) {
                data = flatYaml(text);
            } else {
                throw new IllegalArgumentException("expected a .json, .yaml or .yml file");
            }
        } catch (IllegalArgumentException e) {
            throw new WafermonConfigException(List.of(file + ": " + e.getMessage()));
        }
        if (!(data instanceof Map)) {
            throw new WafermonConfigException(List.of(file + ": expected a mapping of settings"));
        }
        @SuppressWarnings("unchecked")
        Map<String, Object> map = (Map<String, Object>) data;
        Object section = map.getOrDefault("wafermon_sdk", map);
        if (!(section instanceof Map)) {
            throw new WafermonConfigException(List.of(file + ": wafermon_sdk: expected a mapping of settings"));
        }
        @SuppressWarnings("unchecked")
        Map<String, Object> out = (Map<String, Object>) section;
        return out;
    }

    private static Map<String, Object> flatYaml(String text) {
        Map<String, Object> top = new LinkedHashMap<>();
        Map<String, Object> section = null;
        String[] lines = text.split("\r?\n", -1);
        for (int i = 0; i < lines.length; i++) {
            String line = stripComment(lines[i]);
            if (line.isBlank() || line.strip().equals("---")) {
                continue;
            }
            boolean indented = Character.isWhitespace(line.charAt(0));
            int colon = line.indexOf(':');
            if (colon < 0) {
                throw new IllegalArgumentException("line " + (i + 1) + ": expected 'key: value'");
            }
            String key = line.substring(0, colon).strip();
            String value = line.substring(colon + 1).strip();
            if (!indented) {
                section = null;
                if (value.isEmpty()) {
                    if (!key.equals("wafermon_sdk")) {
                        throw new IllegalArgumentException("line " + (i + 1)
                                + ": only a 'wafermon_sdk:' section may hold nested settings");
                    }
                    section = new LinkedHashMap<>();
                    top.put(key, section);
                    continue;
                }
                top.put(key, scalar(value, i));
            } else {
                if (section == null) {
                    throw new IllegalArgumentException("line " + (i + 1) + ": unexpected indentation");
                }
                section.put(key, scalar(value, i));
            }
        }
        return top;
    }

    private static String stripComment(String line) {
        boolean single = false;
        boolean dbl = false;
        for (int i = 0; i < line.length(); i++) {
            char c = line.charAt(i);
            if (c == '\'' && !dbl) {
                single = !single;
            } else if (c == '"' && !single) {
                dbl = !dbl;
            } else if (c == '#' && !single && !dbl && (i == 0 || Character.isWhitespace(line.charAt(i - 1)))) {
                return line.substring(0, i);
            }
        }
        return line;
    }

    private static Object scalar(String v, int line) {
        if (v.length() >= 2 && ((v.startsWith("\"") && v.endsWith("\""))
                || (v.startsWith("'") && v.endsWith("'")))) {
            if (v.startsWith("\"")) {
                return Json.parse(v);
            }
            return v.substring(1, v.length() - 1).replace("''", "'");
        }
        if (v.startsWith("[") || v.startsWith("{") || v.startsWith("&") || v.startsWith("*")
                || v.startsWith("|") || v.startsWith(">")) {
            throw new IllegalArgumentException("line " + (line + 1)
                    + ": only plain scalar values are supported here, got " + quote(v));
        }
        if (v.equals("null") || v.equals("~")) {
            return null;
        }
        return v;
    }
}
