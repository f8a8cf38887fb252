package dev.wafermon.sdk;

/**
 * The door to {@code S3Sink}, which needs the optional AWS SDK v2: the sink is made by
 * reflection, so no class of this SDK links against AWS classes unless s3:// is configured.
 */
final class S3Support {
    private S3Support() {}

    static boolean available() {
        try {
            Class.forName("software.amazon.awssdk.services.s3.S3Client", false, S3Support.class.getClassLoader());
            Class.forName("software.amazon.awssdk.http.urlconnection.UrlConnectionHttpClient", false,
                    S3Support.class.getClassLoader());
            return true;
        } catch (ClassNotFoundException | LinkageError e) {
            return false;
        }
    }

    static Sinks.Sink sink(Settings s) {
        try {
            return (Sinks.Sink) Class.forName("dev.wafermon.sdk.S3Sink")
                    .getDeclaredConstructor(Settings.class).newInstance(s);
        } catch (ReflectiveOperationException e) {
            Throwable cause = e.getCause() != null ? e.getCause() : e;
            throw new WafermonConfigException(java.util.List.of("WAFERMON_DIRECT_URL: cannot set up S3: " + cause));
        }
    }
}
