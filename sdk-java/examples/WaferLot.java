/*
 * A lot of wafers as a job with subjobs: docs/sdk-java.md walks through it.
 *
 *   mvn -q -f sdk-java/pom.xml package -DskipTests
 *   WAFERMON_SITE_ID=fab1 java -cp sdk-java/target/wafermon-sdk-0.1.0.jar sdk-java/examples/WaferLot.java 25
 *
 * Settings come from WAFERMON_* (sidecar mode to http://127.0.0.1:17000 by default; set
 * WAFERMON_MODE=direct and WAFERMON_DIRECT_URL=file:///tmp/events to write files instead).
 */
import dev.wafermon.sdk.App;
import dev.wafermon.sdk.Monitored;
import dev.wafermon.sdk.WafermonClient;

import java.util.Map;

public final class WaferLot {
    /** What the equipment reports when it cannot find a wafer's notch. */
    static final class WaferAlignmentException extends Exception {
        private static final long serialVersionUID = 1L;

        WaferAlignmentException(String message) {
            super(message);
        }
    }

    static void etch(Monitored wafer, int slot) throws Exception {
        Thread.sleep(5); // the tool works
        wafer.progress(0.5, Map.of("step", "etch"));
        if (slot == 7) {
            throw new WaferAlignmentException("notch not found on wafer " + slot);
        }
        Thread.sleep(5);
    }

    public static void main(String[] args) throws Exception {
        int wafers = args.length > 0 ? Integer.parseInt(args[0]) : 25;
        App app = App.of("wafer-lot-example", "1.0.0");
        try (WafermonClient client = WafermonClient.fromEnvironment();
             Monitored lot = client.job(app).businessKey("LOT-4711")
                     .metadata(Map.of("recipe", "POLY-ETCH-3", "wafers", wafers)).start()) {
            int failed = 0;
            for (int slot = 1; slot <= wafers; slot++) {
                final int s = slot;
                try (Monitored wafer = lot.subjob().subKey(String.format("wafer-%02d", slot))
                        .metadata(Map.of("slot", slot)).start()) {
                    wafer.run(() -> etch(wafer, s)); // finished, or failed with the exception
                } catch (WaferAlignmentException e) {
                    failed++; // reported as the wafer's `failed` event; the lot goes on
                }
                lot.progress((double) slot / wafers, Map.of("wafers_done", slot, "wafers_failed", failed));
            }
            lot.finish();
            if (!client.flush()) {
                System.err.println("not everything delivered yet: " + client.stats());
            }
        }
    }
}
