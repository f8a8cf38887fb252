package dev.wafermon.sdk;

import com.sun.net.httpserver.HttpServer;

import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.function.IntFunction;

/**
 * A proxy in front of the REAL sidecar that refuses chosen requests: the policy maps the
 * request's number (0, 1, ...) to a status to answer with (with {@code Retry-After: 1} for
 * 429/503), or 0 to forward it. The real sidecar answers 413/429/503 only under conditions a
 * test cannot bring about quickly (a body above its cap, a full spool). It records what it
 * saw: when each request came, when each answer went, and each body.
 */
final class RefusingProxy implements AutoCloseable {
    private final HttpServer server;
    private final HttpClient forward = HttpClient.newHttpClient();
    final List<Long> arrivals = Collections.synchronizedList(new ArrayList<>());
    final List<Long> answered = Collections.synchronizedList(new ArrayList<>());
    final List<String> bodies = Collections.synchronizedList(new ArrayList<>());

    RefusingProxy(String sidecarUrl, IntFunction<Integer> policy) throws IOException {
        server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        server.createContext("/", ex -> {
            int n;
            synchronized (arrivals) {
                n = arrivals.size();
                arrivals.add(System.nanoTime());
            }
            byte[] body = ex.getRequestBody().readAllBytes();
            bodies.add(new String(body, StandardCharsets.UTF_8));
            int refuse = policy.apply(n);
            int code;
            byte[] out;
            if (refuse != 0) {
                code = refuse;
                out = "{\"error\": \"refused by the test's proxy\"}".getBytes(StandardCharsets.UTF_8);
                if (refuse == 429 || refuse == 503) {
                    ex.getResponseHeaders().add("Retry-After", "1");
                }
            } else {
                try {
                    HttpResponse<byte[]> r = forward.send(HttpRequest.newBuilder(URI.create(sidecarUrl + ex.getRequestURI()))
                            .header("Content-Type", ex.getRequestHeaders().getFirst("Content-Type"))
                            .POST(HttpRequest.BodyPublishers.ofByteArray(body)).build(), HttpResponse.BodyHandlers.ofByteArray());
                    code = r.statusCode();
                    out = r.body();
                } catch (InterruptedException e) {
                    throw new IOException(e);
                }
            }
            ex.getResponseHeaders().add("Content-Type", "application/json");
            ex.sendResponseHeaders(code, out.length);
            try (OutputStream os = ex.getResponseBody()) {
                os.write(out);
            }
            answered.add(System.nanoTime());
        });
        server.start();
    }

    String url() {
        return "http://127.0.0.1:" + server.getAddress().getPort();
    }

    @Override
    public void close() {
        server.stop(0);
    }
}
