/*
 * The Java SDK's driver for the cross-language conformance suite (conformance/PROTOCOL.md,
 * version 1): one JSON request per line on stdin, exactly one JSON response per line on
 * stdout, logs on stderr. It acts through the SDK's public API only, as an application would;
 * wire-form events are passed on as the maps the request held. It never dies on a bad
 * request: it answers ok:false and reads on.
 *
 * Run from the repository root as a single-file program against the built classes:
 *   java -cp sdk-java/target/classes sdk-java/conformance/Driver.java
 *
 * Java cannot change its own environment, so `init` gives the SDK the request's variables
 * through the builder's environment(...) - the SDK's configure-from-environment path with
 * the map the runner sent - and nothing else.
 */
import dev.wafermon.sdk.App;
import dev.wafermon.sdk.Json;
import dev.wafermon.sdk.Monitored;
import dev.wafermon.sdk.WafermonClient;
import dev.wafermon.sdk.WafermonConfigException;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

public final class Driver {
    private static WafermonClient client;
    private static final Map<String, Monitored> handles = new HashMap<>();

    static final class Failure extends Exception {
        private static final long serialVersionUID = 1L;
        final String kind;

        Failure(String kind, String message) {
            super(message);
            this.kind = kind;
        }
    }

    public static void main(String[] args) throws Exception {
        PrintStream out = new PrintStream(new java.io.FileOutputStream(java.io.FileDescriptor.out), false, StandardCharsets.UTF_8);
        System.setOut(System.err); // nothing but responses on stdout
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        boolean quit = false;
        while (!quit && (line = in.readLine()) != null) {
            if (line.isBlank()) {
                continue;
            }
            Map<String, Object> response = new LinkedHashMap<>();
            Object seq = null;
            try {
                Object parsed = Json.parse(line);
                if (!(parsed instanceof Map)) {
                    throw new Failure("protocol", "expected one JSON object per line");
                }
                @SuppressWarnings("unchecked")
                Map<String, Object> req = (Map<String, Object>) parsed;
                seq = req.get("seq");
                response.put("seq", seq);
                response.put("ok", true);
                if (!(seq instanceof Long)) {
                    throw new Failure("protocol", "seq: expected an integer");
                }
                Object op = req.get("op");
                if (!(op instanceof String)) {
                    throw new Failure("protocol", "op: expected a string");
                }
                quit = "quit".equals(op);
                handle((String) op, req, response);
            } catch (Failure f) {
                fail(response, seq, f.kind, f.getMessage());
            } catch (WafermonConfigException e) {
                fail(response, seq, "config", e.getMessage());
            } catch (IllegalArgumentException | IllegalStateException e) {
                fail(response, seq, "usage", e.getMessage());
            } catch (Exception | Error e) {
                e.printStackTrace();
                fail(response, seq, "internal", e.toString());
            }
            out.print(Json.write(response));
            out.print('\n');
            out.flush();
        }
        closeClient(Duration.ofSeconds(10));
        System.exit(0);
    }

    private static void fail(Map<String, Object> response, Object seq, String kind, String message) {
        response.clear();
        response.put("seq", seq);
        response.put("ok", false);
        Map<String, Object> error = new LinkedHashMap<>();
        error.put("kind", kind);
        error.put("message", message == null ? kind : message);
        response.put("error", error);
    }

    private static void closeClient(Duration timeout) {
        handles.clear();
        if (client != null) {
            WafermonClient c = client;
            client = null;
            c.close(timeout);
        }
    }

    private static WafermonClient client() throws Failure {
        if (client == null) {
            throw new Failure("usage", "no client: send init first");
        }
        return client;
    }

    private static Duration timeout(Map<String, Object> req) {
        Object t = req.get("timeout");
        if (t instanceof Number) {
            return Duration.ofMillis((long) (((Number) t).doubleValue() * 1000));
        }
        return client != null ? client.settings().flushTimeout() : Duration.ofSeconds(10);
    }

    private static String string(Map<String, Object> req, String name) throws Failure {
        Object v = req.get(name);
        if (v != null && !(v instanceof String)) {
            throw new Failure("protocol", name + ": expected a string");
        }
        return (String) v;
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> object(Map<String, Object> req, String name) throws Failure {
        Object v = req.get(name);
        if (v != null && !(v instanceof Map)) {
            throw new Failure("protocol", name + ": expected an object");
        }
        return (Map<String, Object>) v;
    }

    private static Monitored handleOf(Map<String, Object> req) throws Failure {
        String name = string(req, "handle");
        if (name == null) {
            throw new Failure("protocol", "handle: expected a string");
        }
        Monitored m = handles.get(name);
        if (m == null) {
            throw new Failure("usage", "handle: unknown handle '" + name + "'");
        }
        return m;
    }

    @SuppressWarnings("unchecked")
    private static void handle(String op, Map<String, Object> req, Map<String, Object> response) throws Failure {
        switch (op) {
            case "hello":
                response.put("language", "java");
                response.put("sdk", WafermonClient.SDK_NAME);
                response.put("sdk_version", WafermonClient.SDK_VERSION);
                response.put("protocol", 1L);
                return;
            case "init": {
                Map<String, Object> env = object(req, "env");
                Map<String, String> vars = new HashMap<>();
                if (env != null) {
                    for (Map.Entry<String, Object> e : env.entrySet()) {
                        if (!(e.getValue() instanceof String)) {
                            throw new Failure("protocol", "env: every value must be a string");
                        }
                        vars.put(e.getKey(), (String) e.getValue());
                    }
                }
                closeClient(Duration.ofSeconds(10));
                // Outside the driver an application calls WafermonClient.fromEnvironment().
                client = WafermonClient.builder().environment(vars).shutdownHook(false).build();
                return;
            }
            case "start": {
                String name = string(req, "handle");
                String type = string(req, "entity_type");
                Map<String, Object> app = object(req, "app");
                if (name == null) {
                    throw new Failure("protocol", "handle: expected a string");
                }
                if (app == null) {
                    throw new Failure("protocol", "app: expected an object");
                }
                if (handles.containsKey(name)) {
                    throw new Failure("usage", "handle: already in use");
                }
                App a = new App((String) app.get("name"), (String) app.get("version"), (String) app.get("app_id"));
                String parentName = string(req, "parent");
                Monitored parent = parentName == null ? null : handles.get(parentName);
                if (parentName != null && parent == null) {
                    throw new Failure("usage", "parent: unknown handle '" + parentName + "'");
                }
                Monitored.JobBuilder b;
                if ("job".equals(type)) {
                    if (parent != null) {
                        throw new Failure("usage", "parent: only a subjob has a parent");
                    }
                    b = client().job(a);
                } else if ("subjob".equals(type)) {
                    if (parent == null) {
                        throw new Failure("usage", "parent: a subjob needs its job's handle");
                    }
                    b = parent.subjob().app(a);
                } else {
                    throw new Failure("usage", "entity_type: must be 'job' or 'subjob', got '" + type + "'");
                }
                Monitored m = b.businessKey(string(req, "business_key")).subKey(string(req, "sub_key"))
                        .metadata(object(req, "metadata")).start();
                handles.put(name, m);
                response.put("entity_id", m.id());
                return;
            }
            case "progress": {
                Monitored m = handleOf(req);
                Object p = req.get("progress");
                if (p != null && !(p instanceof Number)) {
                    throw new Failure("protocol", "progress: expected a number");
                }
                m.progress(p == null ? Double.NaN : ((Number) p).doubleValue(), object(req, "metadata"));
                return;
            }
            case "finish":
                handleOf(req).finish();
                handles.remove(string(req, "handle"));
                return;
            case "fail": {
                Monitored m = handleOf(req);
                Map<String, Object> error = object(req, "error");
                if (error == null || !(error.get("type") instanceof String)) {
                    throw new Failure("protocol", "error.type: expected a string");
                }
                m.fail((String) error.get("type"), (String) error.get("message"), (String) error.get("stack"));
                handles.remove(string(req, "handle"));
                return;
            }
            case "emit_event": {
                Object event = req.get("event");
                if (!(event instanceof Map)) {
                    throw new Failure("protocol", "event: expected an object");
                }
                response.put("queued", client().emitEvent((Map<String, Object>) event));
                return;
            }
            case "emit_batch": {
                Object events = req.get("events");
                if (!(events instanceof List)) {
                    throw new Failure("protocol", "events: expected an array");
                }
                for (Object e : (List<Object>) events) {
                    if (!(e instanceof Map)) {
                        throw new Failure("protocol", "events: every item must be an object");
                    }
                }
                response.put("queued", (long) client().emitBatch((List<Map<String, Object>>) (List<?>) events));
                return;
            }
            case "flush":
                response.put("delivered", client().flush(timeout(req)));
                return;
            case "close":
                closeClient(timeout(req));
                return;
            case "stats": {
                WafermonClient.Stats s = client().stats();
                Map<String, Object> o = new LinkedHashMap<>();
                o.put("queued", s.queued());
                o.put("sent", s.sent());
                o.put("spooled", s.spooled());
                o.put("replayed", s.replayed());
                o.put("spool_files", s.spoolFiles());
                o.put("rejected", s.rejected());
                o.put("invalid", s.invalid());
                o.put("shed", s.shed());
                o.put("lost", s.lost());
                o.put("retries", s.retries());
                o.put("metadata_truncated", s.metadataTruncated());
                o.put("last_error", s.lastError());
                response.put("stats", o);
                return;
            }
            case "quit":
                closeClient(Duration.ofSeconds(10));
                return;
            default:
                throw new Failure("protocol", "op: unknown op '" + op + "'");
        }
    }
}
