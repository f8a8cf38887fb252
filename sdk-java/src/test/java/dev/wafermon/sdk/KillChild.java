package dev.wafermon.sdk;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * The child JVM of {@link SidecarTest#aKilledJvmsSpoolIsReplayedOnTheNextStart}: with the
 * sidecar down, runs 50 jobs, flushes (they go to the spool), writes their ids to the ready
 * file, then keeps running jobs until it is killed.
 */
public final class KillChild {
    private KillChild() {}

    public static void main(String[] args) throws Exception {
        if (args[0].equals("--exit-without-close")) {
            exitWithoutClose(args[1], Path.of(args[2]));
            return;
        }
        Path spool = Path.of(args[0]);
        String url = args[1];
        Path ready = Path.of(args[2]);
        WafermonClient client = WafermonClient.builder().environment(Map.of()).sidecarUrl(url)
                .siteId("fab1").spoolDir(spool).maxRetries(0).flushInterval(Duration.ofMillis(20))
                .replayInterval(Duration.ofHours(1)).build();
        List<String> ids = new ArrayList<>();
        for (int i = 0; i < 50; i++) {
            try (Monitored job = client.startJob(SidecarTest.APP, "LOT-KILL-" + i)) {
                ids.add(job.id());
                job.finish();
            }
        }
        if (client.flush(Duration.ofSeconds(20))) {
            throw new AssertionError("delivered although the sidecar is down");
        }
        if (client.stats().spooled() < 100) {
            throw new AssertionError("not spooled: " + client.stats());
        }
        Path tmp = ready.resolveSibling("ready.tmp");
        Files.write(tmp, ids);
        Files.move(tmp, ready);
        for (int i = 0; ; i++) { // mid-run when the parent kills it
            try (Monitored job = client.startJob(SidecarTest.APP, "LOT-MORE-" + i)) {
                job.finish();
            }
            Thread.sleep(5);
        }
    }

    /** Runs a job and leaves main without close(): the shutdown hook must deliver it. */
    static void exitWithoutClose(String url, Path spool) {
        WafermonClient client = WafermonClient.builder().environment(Map.of()).sidecarUrl(url)
                .siteId("fab1").spoolDir(spool).flushInterval(Duration.ofSeconds(30)).build();
        Monitored job = client.startJob(SidecarTest.APP, "LOT-HOOK");
        job.progress(0.5);
        job.finish();
        System.out.println(job.id());
    }
}
