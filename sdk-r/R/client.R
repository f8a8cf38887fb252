# The client: settings, the in-memory batch, and when it is sent. R runs one thread and the
# SDK starts none, so sending happens inside SDK calls, bounded: a batch goes out when it is
# full (WAFERMON_BATCH_SIZE), when its first event is older than WAFERMON_FLUSH_INTERVAL at
# the next call, when a top-level job ends, and on flush/close (and at exit). Each of those
# makes at most one attempt (WAFERMON_TIMEOUT); a failed batch waits in memory for its
# backoff, and after WAFERMON_MAX_RETRIES goes to the disk spool, which a short-lived
# replayer process (see spool.R) delivers by itself once the sidecar is back.

.sdk_version <- function() as.character(utils::packageVersion("wafermon"))

.new_context <- function(settings) {
  ctx <- new.env(parent = emptyenv())
  ctx$settings <- settings
  ctx$url <- .ingest_url(settings)
  ctx$handle <- if (settings$mode == "sidecar") .new_handle(settings) else NULL
  ctx$direct_root <- if (settings$mode == "direct") {
    utils::URLdecode(sub("^file://(localhost)?", "", settings$direct_url))
  } else {
    NULL
  }
  ctx$spool_path <- .spool_prepare(file.path(settings$spool_dir, settings$mode))
  ctx$counters <- list(
    queued = 0, sent = 0, spooled = 0, replayed = 0, rejected = 0, dropped = 0,
    retries = 0, requests = 0, metadata_truncated = 0, replayers = 0, last_error = ""
  )
  ctx$not_before <- 0
  ctx$spool_seq <- 0L
  ctx$replayer_started <- -Inf
  ctx$last_logged <- 0
  ctx
}

.reset_buffer <- function(client) {
  size <- min(client$settings$batch_size, client$settings$queue_size)
  client$threshold <- size
  client$lines <- character(size)
  client$sites <- character(size)
  client$dates <- character(size)
  client$n <- 0L
  client$first_at <- 0
  client$pending <- character()
  client$pending_sites <- NULL
  client$pending_dates <- NULL
  client$attempts <- 0L
  client$pid <- Sys.getpid()
}

#' Start a wafermon client
#'
#' Reads the settings (see [wafermon_settings()]), prepares the spool folder and makes the
#' client the default one that [emit_event()], [with_monitored()] and the other calls use.
#' Events an earlier process left in the spool are replayed now (one attempt), else by the
#' replayer process. A client that was the default before is closed first.
#'
#' Debugging: with `console = TRUE` (`WAFERMON_CONSOLE=1`) each event's wire JSON is also
#' written to stderr as it is sent, one line each prefixed `wafermon-sdk-r: send `.
#'
#' @inheritParams wafermon_settings
#' @param default Make it the default client (`TRUE`).
#' @return The client (invisibly), an environment of class `wafermon_client`.
#' @examples
#' root <- file.path(tempdir(), "events")
#' client <- wafermon_init(list(
#'   mode = "direct", direct_url = paste0("file://", root), site_id = "fab1",
#'   spool_dir = file.path(tempdir(), "spool")
#' ))
#' with_monitored("LOT-1", Sys.sleep(0.01), app = "example")
#' wafermon_close()
#' @export
wafermon_init <- function(config = NULL, ..., default = TRUE) {
  settings <- wafermon_settings(config, ...)
  client <- .new_context(settings)
  class(client) <- "wafermon_client"
  client$closed <- FALSE
  client$direct <- settings$mode == "direct"
  .reset_buffer(client)
  reg.finalizer(client, function(e) if (!isTRUE(e$closed)) try(wafermon_close(client = e), silent = TRUE),
    onexit = TRUE
  )
  if (default) {
    if (!is.null(.state$client) && !isTRUE(.state$client$closed)) wafermon_close(client = .state$client)
    .state$client <- client
  }
  if (length(.spool_files(client))) {
    if (.spool_replay(client, .now(), retrying = FALSE) != "empty") .ensure_replayer(client)
  }
  invisible(client)
}

#' The default client
#'
#' The client [wafermon_init()] made, or a new one from the environment (`WAFERMON_*`,
#' `WAFERMON_SDK_CONFIG`) on first use.
#' @return A `wafermon_client`.
#' @export
wafermon_client <- function() {
  if (is.null(.state$client) || isTRUE(.state$client$closed)) wafermon_init()
  .state$client
}

#' @export
print.wafermon_client <- function(x, ...) {
  cat("<wafermon_client ", x$settings$mode, " ",
    if (x$settings$mode == "sidecar") x$settings$sidecar_url else x$settings$direct_url,
    if (isTRUE(x$closed)) " (closed)" else "", ">\n",
    sep = ""
  )
  invisible(x)
}

# A forked child (parallel::mclapply) inherits the parent's batch: those events are the
# parent's to send, so the child starts with an empty one and its own connection.
.check_fork <- function(client) {
  if (client$pid != Sys.getpid()) {
    .reset_buffer(client)
    if (!is.null(client$handle)) client$handle <- .new_handle(client$settings)
  }
}

# Add one encoded event; send when the batch is due. `urgent`: a top-level job ended.
.enqueue <- function(client, line, site, time, urgent = FALSE) {
  if (client$closed) {
    client$counters$dropped <- client$counters$dropped + 1
    .note_error(client, "event emitted after wafermon_close(): dropped")
    return(FALSE)
  }
  if (client$pid != Sys.getpid()) .check_fork(client)
  n <- client$n + 1L
  if (n > client$threshold) {
    .pump(client)
    n <- client$n + 1L
  }
  client$lines[n] <- line
  if (client$direct) { # the file an event goes to; the sidecar needs no such thing
    client$sites[n] <- site
    client$dates[n] <- substr(time, 1L, 10L)
  }
  client$n <- n
  client$counters$queued <- client$counters$queued + 1
  now <- .now()
  if (n == 1L) client$first_at <- now
  if (urgent || n >= client$threshold || now - client$first_at >= client$settings$flush_interval) {
    .pump(client)
  }
  TRUE
}

# Console mode (WAFERMON_CONSOLE): each event's wire JSON on stderr as it is sent, one line
# each, like OpenTelemetry's console exporter; for seeing what a program reports while writing it.
# Written to stderr() directly, not by message(), so suppressMessages() does not hide it.
.print_events <- function(lines) {
  if (length(lines)) cat(paste0("wafermon-sdk-r: send ", lines, "\n"), file = stderr(), sep = "")
}

# Take the pending and buffered events, in order. The buffered ones leave memory for the first
# time here (sent, or spooled behind older events): console mode prints them now, once each.
.take_all <- function(client) {
  n <- client$n
  idx <- seq_len(n)
  if (isTRUE(client$settings$console)) .print_events(client$lines[idx])
  out <- list(
    lines = c(client$pending, client$lines[idx]),
    sites = if (is.null(client$pending_sites) && length(client$pending)) NULL else c(client$pending_sites, client$sites[idx]),
    dates = if (is.null(client$pending_dates) && length(client$pending)) NULL else c(client$pending_dates, client$dates[idx])
  )
  client$n <- 0L
  client$pending <- character()
  client$pending_sites <- client$pending_dates <- NULL
  out
}

.to_spool <- function(client, lines) {
  client$attempts <- 0L
  if (.spool_write(client, lines)) .ensure_replayer(client)
}

# One bounded delivery attempt from inside a caller's SDK call; never sleeps.
.pump <- function(client) {
  batch <- .take_all(client)
  if (length(batch$lines) == 0L) return(invisible())
  if (length(.spool_files(client))) {
    # Spooled events go first, so a destination sees each entity's events in order.
    if (.spool_replay(client, .now(), retrying = FALSE) != "empty") {
      .to_spool(client, batch$lines)
      return(invisible())
    }
  }
  if (.not_before(client) > .now()) {
    .keep_pending(client, batch)
    return(invisible())
  }
  result <- .send_once(client, batch$lines, batch$sites, batch$dates)
  if (result$ok) {
    client$attempts <- 0L
    return(invisible())
  }
  client$attempts <- client$attempts + 1L
  client$counters$retries <- client$counters$retries + 1
  s <- client$settings
  if (!s$enable_retries || client$attempts > s$max_retries) {
    .to_spool(client, result$rest)
    return(invisible())
  }
  server <- !is.na(result$wait)
  delay <- if (server) min(result$wait, s$retry_max_delay) else .backoff(s, client$attempts)
  .set_not_before(client, .now() + delay, server)
  partial <- length(result$rest) != length(batch$lines)
  .keep_pending(client, list(
    lines = result$rest,
    sites = if (partial) NULL else batch$sites, dates = if (partial) NULL else batch$dates
  ))
  invisible()
}

.keep_pending <- function(client, batch) {
  client$pending <- batch$lines
  client$pending_sites <- batch$sites
  client$pending_dates <- batch$dates
  # A pending batch too large for memory goes to disk rather than growing without bound.
  if (length(client$pending) >= client$settings$queue_size) {
    lines <- client$pending
    client$pending <- character()
    client$pending_sites <- client$pending_dates <- NULL
    .to_spool(client, lines)
  }
}

#' Deliver everything emitted so far
#'
#' Sends the batch and what waits in the spool, retrying up to `WAFERMON_MAX_RETRIES` times
#' (honouring `Retry-After`) within `timeout`. What is still not delivered then waits in the
#' disk spool, and the replayer process delivers it once the sidecar is back.
#'
#' @param timeout Seconds at most (default `WAFERMON_FLUSH_TIMEOUT`).
#' @param client A client (default: [wafermon_client()]).
#' @return `TRUE` when every event was delivered and nothing waits in the spool.
#' @export
wafermon_flush <- function(timeout = NULL, client = wafermon_client()) {
  if (is.environment(client) && isTRUE(client$closed)) return(FALSE)
  .flush(client, timeout, retrying = TRUE)
}

# retrying = FALSE (close): one attempt, no waiting for backoffs or a busy replayer; what is
# not delivered goes to the spool at once.
.flush <- function(client, timeout, retrying) {
  if (!inherits(client, "wafermon_client")) .usage_error("client: expected a wafermon_client")
  if (!is.null(timeout) && !(is.numeric(timeout) && length(timeout) == 1L && !is.na(timeout))) {
    .usage_error("timeout: expected a number of seconds or NULL")
  }
  .check_fork(client)
  started <- .now()
  deadline <- started + (timeout %||% client$settings$flush_timeout)
  batch <- .take_all(client)
  client$attempts <- 0L
  repeat {
    state <- .spool_replay(client, deadline, retrying = retrying)
    if (state == "empty") break
    if (state == "failed" || !retrying || .now() >= deadline || .replayer_failed_since(client, started)) {
      .to_spool(client, batch$lines)
      return(FALSE)
    }
    Sys.sleep(0.02) # the replayer process is at it: wait for it to finish
  }
  rest <- .send_retrying(client, batch$lines, deadline, batch$sites, batch$dates, retrying = retrying)
  if (length(rest)) {
    .to_spool(client, rest)
    return(FALSE)
  }
  length(.spool_files(client)) == 0L
}

.replayer_failed_since <- function(client, since) {
  failed <- suppressWarnings(as.numeric(tryCatch(
    readLines(file.path(client$spool_path, ".failed"), n = 1L, warn = FALSE),
    error = function(e) NA
  )))
  length(failed) == 1L && !is.na(failed) && failed >= since
}

#' Flush and close a client
#'
#' Sends what is left with one attempt each (no waiting out retries, so closing, and R's
#' exit, stay quick while the sidecar is down); what is not delivered goes to the disk spool
#' for the replayer process or the next client. Later events to this client are dropped
#' (counted). Clients are also closed when R exits.
#'
#' @inheritParams wafermon_flush
#' @return `TRUE` when everything was delivered (invisibly).
#' @export
wafermon_close <- function(timeout = NULL, client = .state$client) {
  if (is.null(client) || isTRUE(client$closed)) return(invisible(TRUE))
  delivered <- .flush(client, timeout, retrying = FALSE)
  client$closed <- TRUE
  if (identical(client, .state$client)) .state$stack <- list()
  invisible(delivered)
}

#' The client's counters
#'
#' @inheritParams wafermon_flush
#' @return A named list: `queued`, `pending` (in memory now), `sent`, `spooled`, `replayed`,
#'   `spool_files`, `rejected`, `dropped`, `retries`, `requests`, `metadata_truncated`,
#'   `replayers` (replayer processes started), `last_error`.
#' @export
wafermon_stats <- function(client = wafermon_client()) {
  c(client$counters, list(
    pending = client$n + length(client$pending),
    spool_files = length(.spool_files(client))
  ))
}
