package dev.wafermon.sdk;

import java.util.Objects;

/**
 * The application a job belongs to: {@code app} on the wire.
 *
 * @param name    1-128 characters, required
 * @param version optional (null)
 * @param appId   optional lower-case UUID text (null)
 */
public record App(String name, String version, String appId) {
    /** Checks the fields against the event schema. */
    public App {
        Objects.requireNonNull(name, "app.name");
        if (name.isEmpty() || name.length() > 128) {
            throw new IllegalArgumentException("app.name: must be 1-128 characters, got " + name.length());
        }
        if (version != null && (version.isEmpty() || version.length() > 128)) {
            throw new IllegalArgumentException("app.version: must be 1-128 characters");
        }
        if (appId != null && !appId.matches("[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")) {
            throw new IllegalArgumentException("app.app_id: expected a lower-case UUID, got '" + appId + "'");
        }
    }

    /** An app with a name and a version. */
    public static App of(String name, String version) {
        return new App(name, version, null);
    }

    /** An app with a name only. */
    public static App of(String name) {
        return new App(name, null, null);
    }
}
