/*
 * Java 21+: 200 lots on virtual threads, 5 wafers each, through one client, recorded with JFR;
 * then count the jdk.VirtualThreadPinned events. Run from the repository root:
 *
 *   mvn -q -f sdk-java/pom.xml compile
 *   J=/usr/lib/jvm/temurin-25-jdk-amd64/bin
 *   WAFERMON_MODE=direct WAFERMON_SITE_ID=fab1 WAFERMON_DIRECT_URL=file:///tmp/pin/events \
 *     WAFERMON_SPOOL_DIR=/tmp/pin/spool $J/java -XX:StartFlightRecording=filename=/tmp/pin/pin.jfr \
 *     -cp sdk-java/target/classes sdk-java/bench/PinningCheck.java
 *   $J/jfr summary /tmp/pin/pin.jfr | grep VirtualThreadPinned      # 0 events
 *
 * (Temurin 25, 2026-12-04: 0 pinned, 4400 events delivered. Before WafermonClient initialized
 * the SDK's classes itself there were 3, all first-use class initialization.)
 */
import dev.wafermon.sdk.App;
import dev.wafermon.sdk.Monitored;
import dev.wafermon.sdk.WafermonClient;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

public final class PinningCheck {
    public static void main(String[] args) throws Exception {
        try (WafermonClient client = WafermonClient.fromEnvironment();
             ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
            List<Future<?>> lots = new ArrayList<>();
            for (int lot = 0; lot < 200; lot++) {
                final int l = lot;
                lots.add(pool.submit(() -> {
                    try (Monitored job = client.job(App.of("pinning-check", "1")).businessKey("LOT-" + l).start()) {
                        for (int w = 0; w < 5; w++) {
                            try (Monitored wafer = job.subjob().subKey("wafer-" + w).start()) {
                                wafer.progress(0.5);
                                Thread.sleep(1);
                                wafer.finish();
                            }
                            job.progress((w + 1) / 5.0);
                        }
                        job.finish();
                    }
                    return null;
                }));
            }
            for (Future<?> f : lots) {
                f.get();
            }
            System.out.println("delivered: " + client.flush() + " " + client.stats());
        }
    }
}
