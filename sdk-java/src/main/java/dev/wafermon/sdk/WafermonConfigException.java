package dev.wafermon.sdk;

import java.util.List;

/**
 * The client's settings were refused. The message lists every fault, each under the name the
 * user wrote it with ({@code WAFERMON_MODE: must be one of sidecar, direct, both, got 'sidcar'},
 * {@code sdk.yaml: queue_size: ...}, or the builder's setting name); nothing was started.
 */
public final class WafermonConfigException extends IllegalArgumentException {
    private static final long serialVersionUID = 1L;

    /** Every problem, as {@code "<where>: <why>"}. */
    private final List<String> problems;

    WafermonConfigException(List<String> problems) {
        super(String.join("; ", problems));
        this.problems = List.copyOf(problems);
    }

    /** Every problem, as {@code "<where>: <why>"}. */
    public List<String> problems() {
        return problems;
    }
}
