package dev.wafermon.sdk;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.net.HttpURLConnection;
import java.net.ServerSocket;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import java.util.stream.Collectors;
import java.util.stream.Stream;

/**
 * The REAL {@code wafermon sidecar} (hosts/wafermon-hosts), started by the test with a
 * throw-away site config whose backend is the filesystem backend: what the SDK sends is
 * validated by the sidecar with the core codec and stored under {@code events/}. The command
 * comes from the {@code wafermon.bin} system property (noxfile.py's sdk_java session passes
 * the one in its venv); without it the test fails, it never skips.
 */
final class RealSidecar implements AutoCloseable {
    static final ObjectMapper JSON = new ObjectMapper();
    final Path work;
    final int port;
    final Path events;
    private Process process;
    private final Path log;

    RealSidecar(Path work, int port) {
        this.work = work;
        this.port = port == 0 ? freePort() : port;
        this.events = work.resolve("events");
        this.log = work.resolve("sidecar-" + this.port + ".log");
    }

    static String binary() {
        String bin = System.getProperty("wafermon.bin", "");
        if (bin.isBlank()) {
            bin = System.getenv().getOrDefault("WAFERMON_BIN", "");
        }
        if (bin.isBlank() || !Files.isExecutable(Paths.get(bin))) {
            throw new AssertionError("the wafermon command was not found: run `nox -s sdk_java`, or "
                    + "mvn -Dwafermon.bin=/path/to/venv/bin/wafermon (got '" + bin + "')");
        }
        return bin;
    }

    static int freePort() {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        } catch (IOException e) {
            throw new AssertionError(e);
        }
    }

    String url() {
        return "http://127.0.0.1:" + port;
    }

    RealSidecar start() throws Exception {
        Path config = work.resolve("site-" + port + ".yaml");
        Files.writeString(config, "site_id: fab1\n"
                + "sidecar: {listen: \"127.0.0.1:" + port + "\", spool: {dir: \"" + work.resolve("sidecar-spool") + "\"}}\n"
                + "backends:\n"
                + "  - {name: archive, type: filesystem, config: {root: \"" + events + "\", fsync: true}}\n");
        process = new ProcessBuilder(binary(), "sidecar", "--config", config.toString(), "--log-level", "warning")
                .redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile())).start();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (System.nanoTime() < deadline) {
            if (healthy()) {
                return this;
            }
            if (!process.isAlive()) {
                throw new AssertionError("the sidecar exited during start-up; its log:\n" + tail());
            }
            Thread.sleep(100);
        }
        throw new AssertionError("the sidecar did not become healthy in 60 s; its log:\n" + tail());
    }

    private boolean healthy() {
        try {
            HttpURLConnection c = (HttpURLConnection) URI.create(url() + "/v1/healthz").toURL().openConnection();
            c.setConnectTimeout(500);
            c.setReadTimeout(2000);
            return c.getResponseCode() == 200;
        } catch (IOException e) {
            return false;
        }
    }

    String tail() throws IOException {
        if (!Files.exists(log)) {
            return "(no log)";
        }
        List<String> lines = Files.readAllLines(log, StandardCharsets.UTF_8);
        return String.join("\n", lines.subList(Math.max(0, lines.size() - 30), lines.size()));
    }

    void stop() throws InterruptedException {
        if (process != null && process.isAlive()) {
            process.destroy(); // SIGTERM: the sidecar drains and stops
            if (!process.waitFor(30, TimeUnit.SECONDS)) {
                process.destroyForcibly().waitFor();
            }
        }
        process = null;
    }

    @Override
    public void close() {
        try {
            stop();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** Every event the filesystem backend stored so far. */
    List<JsonNode> stored() throws IOException {
        List<JsonNode> out = new ArrayList<>();
        if (!Files.isDirectory(events)) {
            return out;
        }
        List<Path> files;
        try (Stream<Path> walk = Files.walk(events)) {
            files = walk.filter(p -> p.getFileName().toString().endsWith(".jsonl")).sorted().collect(Collectors.toList());
        }
        for (Path f : files) {
            for (String line : Files.readAllLines(f, StandardCharsets.UTF_8)) {
                if (!line.isBlank()) {
                    out.add(JSON.readTree(line));
                }
            }
        }
        return out;
    }

    /** Waits until at least {@code want} stored events match (the backend writes after the 202). */
    List<JsonNode> await(Predicate<JsonNode> which, int want, int seconds) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
        List<JsonNode> found;
        do {
            found = stored().stream().filter(which).collect(Collectors.toList());
            if (found.size() >= want) {
                return found;
            }
            Thread.sleep(100);
        } while (System.nanoTime() < deadline);
        throw new AssertionError("only " + found.size() + " of " + want + " events reached the backend; sidecar log:\n" + tail());
    }
}
