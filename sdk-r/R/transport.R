# Delivery: one POST to the sidecar (curl) or one append to the file tree, the answers the
# sidecar gives (PROTOCOL.md) and the backoff between attempts.
#
# curl rather than httr2: Debian's httr2 is 0.2.2 and is itself a layer over curl; curl alone
# gives the few calls needed here (a reusable keep-alive handle, total and connect timeouts,
# the Retry-After header) with one dependency less and an API that has been stable for years.

.retryable_status <- c(401L, 403L, 404L, 408L, 425L, 429L)
.split_status <- c(413L, 422L)

.ingest_url <- function(settings) paste0(settings$sidecar_url, "/v1/ingest/events")

.new_handle <- function(settings) {
  h <- curl::new_handle()
  headers <- list("Content-Type" = "application/x-ndjson", "Expect" = "")
  if (!is.null(settings$token)) headers$Authorization <- paste("Bearer", settings$token$value)
  do.call(curl::handle_setheaders, c(list(h), headers))
  curl::handle_setopt(h,
    timeout_ms = as.integer(settings$timeout * 1000),
    connecttimeout_ms = as.integer(settings$timeout * 1000),
    ssl_verifypeer = settings$verify_tls, ssl_verifyhost = if (settings$verify_tls) 2L else 0L,
    nosignal = TRUE, useragent = paste0("wafermon-sdk-r/", .sdk_version())
  )
  h
}

# One POST. Returns list(status, retry_after, body) with status 0 for a network error.
.post <- function(ctx, body) {
  curl::handle_setopt(ctx$handle, copypostfields = body)
  res <- tryCatch(curl::curl_fetch_memory(ctx$url, handle = ctx$handle), error = function(e) e)
  if (inherits(res, "error")) {
    # A failed transfer can leave the handle half-used: start the next one clean.
    ctx$handle <- .new_handle(ctx$settings)
    return(list(status = 0L, retry_after = NA_real_, body = conditionMessage(res)))
  }
  headers <- curl::parse_headers_list(res$headers)
  retry_after <- suppressWarnings(as.numeric(headers[["retry-after"]] %||% NA))
  list(status = res$status_code, retry_after = retry_after, body = rawToChar(res$content))
}

# Rejected results of a 202 (or a 400 with results): refused for good, counted and logged.
.count_rejections <- function(ctx, answer, lines) {
  parsed <- tryCatch(jsonlite::fromJSON(answer$body, simplifyVector = FALSE), error = function(e) NULL)
  if (!is.list(parsed) || identical(parsed$rejected, 0L) || is.null(parsed$results)) return(0L)
  rejected <- 0L
  for (result in parsed$results) {
    if (identical(result$status, "rejected")) {
      rejected <- rejected + 1L
      why <- vapply(result$errors %||% list(), function(e) paste0(e$path, ": ", e$message), "")
      .note_error(ctx, paste0("sidecar rejected an event: ", paste(why, collapse = "; ")))
    }
  }
  ctx$counters$rejected <- ctx$counters$rejected + rejected
  rejected
}

.has_results <- function(answer) {
  grepl("\"results\"", answer$body, fixed = TRUE)
}

# Deliver `lines` with one attempt (413/422 split into halves down to single events).
# Returns list(ok, rest, wait): `rest` are the lines still to deliver, `wait` the server's
# Retry-After (NA when it gave none).
.send_sidecar <- function(ctx, lines) {
  answer <- .post(ctx, paste0(paste(lines, collapse = "\n"), "\n"))
  ctx$counters$requests <- ctx$counters$requests + 1L
  status <- answer$status
  if (status == 202L || status == 200L || (status == 400L && .has_results(answer))) {
    rejected <- .count_rejections(ctx, answer, lines)
    ctx$counters$sent <- ctx$counters$sent + length(lines) - rejected
    return(list(ok = TRUE, rest = character(), wait = NA_real_))
  }
  if (status %in% .split_status) {
    if (length(lines) == 1L) {
      ctx$counters$rejected <- ctx$counters$rejected + 1L
      .note_error(ctx, sprintf("the sidecar answered %d to a single event: rejected", status))
      return(list(ok = TRUE, rest = character(), wait = NA_real_))
    }
    half <- length(lines) %/% 2L
    first <- .send_sidecar(ctx, lines[seq_len(half)])
    second_lines <- lines[-seq_len(half)]
    if (!first$ok) return(list(ok = FALSE, rest = c(first$rest, second_lines), wait = first$wait))
    return(.send_sidecar(ctx, second_lines))
  }
  if (status == 0L || status >= 500L || status %in% .retryable_status) {
    .note_error(ctx, if (status == 0L) {
      paste0("sidecar ", ctx$url, " unreachable: ", answer$body)
    } else {
      sprintf("sidecar answered %d: %s", status, substr(answer$body, 1, 200))
    })
    return(list(ok = FALSE, rest = lines, wait = answer$retry_after))
  }
  ctx$counters$rejected <- ctx$counters$rejected + length(lines)
  .note_error(ctx, sprintf(
    "sidecar answered %d: %s (%d events refused)", status,
    substr(answer$body, 1, 200), length(lines)
  ))
  list(ok = TRUE, rest = character(), wait = NA_real_)
}

# Direct mode: append to ROOT/{site_id}/{YYYY-MM-DD}/events.jsonl, the filesystem backend's
# layout. `sites`/`dates` are known for fresh events; spooled lines are parsed for them.
.send_direct <- function(ctx, lines, sites = NULL, dates = NULL) {
  if (is.null(sites)) {
    parsed <- lapply(lines, function(l) jsonlite::fromJSON(l, simplifyVector = FALSE))
    sites <- vapply(parsed, function(e) as.character(e$site_id %||% ""), "")
    dates <- vapply(parsed, function(e) substr(as.character(e$time %||% ""), 1, 10), "")
  }
  ok <- grepl(.site_id_pattern, sites, perl = TRUE) & grepl("^[0-9]{4}-[0-9]{2}-[0-9]{2}$", dates, perl = TRUE)
  if (!all(ok)) {
    ctx$counters$rejected <- ctx$counters$rejected + sum(!ok)
    .note_error(ctx, sprintf("%d events without a valid site_id or time refused", sum(!ok)))
  }
  groups <- split(seq_along(lines)[ok], paste(sites[ok], dates[ok], sep = "/"))
  done <- rep(!ok, length.out = length(lines))
  for (key in names(groups)) {
    idx <- groups[[key]]
    folder <- file.path(ctx$direct_root, key)
    written <- tryCatch(
      {
        if (!dir.exists(folder)) dir.create(folder, recursive = TRUE, showWarnings = FALSE)
        .append_file(file.path(folder, "events.jsonl"), paste0(paste(lines[idx], collapse = "\n"), "\n"))
        TRUE
      },
      error = function(e) {
        .note_error(ctx, paste0("cannot append to ", folder, ": ", conditionMessage(e)))
        FALSE
      }
    )
    if (!written) return(list(ok = FALSE, rest = lines[!done], wait = NA_real_))
    done[idx] <- TRUE
    ctx$counters$sent <- ctx$counters$sent + length(idx)
  }
  list(ok = TRUE, rest = character(), wait = NA_real_)
}

# One write of the whole text in append mode: lines of concurrent writers do not interleave.
.append_file <- function(path, text) {
  # file() only warns when it cannot open: make that the error it is.
  con <- withCallingHandlers(file(path, open = "ab"), warning = function(w) stop(conditionMessage(w), call. = FALSE))
  on.exit(close(con))
  writeBin(charToRaw(text), con)
}

.send_once <- function(ctx, lines, sites = NULL, dates = NULL) {
  if (ctx$settings$mode == "direct") .send_direct(ctx, lines, sites, dates) else .send_sidecar(ctx, lines)
}

# Full jitter: attempt n waits uniform(0, min(max, base * 2^(n-1))).
.backoff <- function(settings, attempt) {
  stats::runif(1, 0, min(settings$retry_max_delay, settings$retry_base_delay * 2^(attempt - 1)))
}

# The earliest time the destination may be asked again: this client's own backoff, and a
# server's Retry-After shared through the spool folder with the replayer process.
.not_before <- function(ctx) {
  shared <- suppressWarnings(as.numeric(tryCatch(
    readLines(file.path(ctx$spool_path, ".not-before"), n = 1L, warn = FALSE),
    error = function(e) NA
  )))
  max(ctx$not_before, if (length(shared) == 1L && !is.na(shared)) shared else 0)
}

.set_not_before <- function(ctx, when, from_server) {
  ctx$not_before <- max(ctx$not_before, when)
  if (from_server) {
    try(writeLines(sprintf("%.3f", when), file.path(ctx$spool_path, ".not-before")), silent = TRUE)
  }
}

# Retry within `deadline` (absolute, seconds since the epoch) up to max_retries times,
# honouring Retry-After. Returns the lines not delivered.
.send_retrying <- function(ctx, lines, deadline, sites = NULL, dates = NULL, retrying = TRUE) {
  if (length(lines) == 0L) return(character())
  settings <- ctx$settings
  attempt <- 0L
  repeat {
    wait_until <- .not_before(ctx)
    now <- .now()
    if (wait_until > now) {
      if (!retrying || wait_until > deadline) return(lines)
      Sys.sleep(wait_until - now)
    }
    result <- .send_once(ctx, lines, sites, dates)
    if (result$ok) return(character())
    if (length(result$rest) != length(lines)) sites <- dates <- NULL
    lines <- result$rest
    attempt <- attempt + 1L
    ctx$counters$retries <- ctx$counters$retries + 1L
    if (!retrying || !settings$enable_retries || attempt > settings$max_retries) return(lines)
    server <- !is.na(result$wait)
    delay <- if (server) min(result$wait, settings$retry_max_delay) else .backoff(settings, attempt)
    .set_not_before(ctx, .now() + delay, server)
    if (.now() + delay > deadline) return(lines)
  }
}

.now <- function() unclass(Sys.time())

.note_error <- function(ctx, text) {
  ctx$counters$last_error <- text
  now <- .now()
  if (now - (ctx$last_logged %||% 0) >= 10) {
    ctx$last_logged <- now
    .log(text)
  }
}
