# Event ids, times, process figures and JSON: the pieces every event is made of.

.state <- new.env(parent = emptyenv())
.state$rand <- raw(0)
.state$rand_pos <- 0L
.state$rand_pid <- 0L
.state$second <- -1
.state$second_text <- ""
.state$stack <- list()
.state$uuids <- character()
.state$uuid_next <- 257L
.state$uuid_pid <- 0L

# 4 KiB of CSPRNG bytes (OpenSSL's RAND_bytes) at a time: one call per 256 ids, not per id.
# Refilled after fork() (a new pid), so a child never repeats its parent's ids.
.random_bytes <- function(n) {
  pid <- Sys.getpid()
  if (.state$rand_pos + n > length(.state$rand) || .state$rand_pid != pid) {
    .state$rand <- openssl::rand_bytes(4096L)
    .state$rand_pos <- 0L
    .state$rand_pid <- pid
  }
  out <- .state$rand[.state$rand_pos + seq_len(n)]
  .state$rand_pos <- .state$rand_pos + n
  out
}

# UUIDs are made 256 at a time, vectorised, from one 4 KiB draw: per id that is an index
# into a character vector instead of a dozen R-level string operations.
.uuid_pool <- function() {
  b <- matrix(as.integer(openssl::rand_bytes(4096L)), nrow = 16L)
  b[7L, ] <- bitwOr(bitwAnd(b[7L, ], 0x0f), 0x40)
  b[9L, ] <- bitwOr(bitwAnd(b[9L, ], 0x3f), 0x80)
  hex <- matrix(sprintf("%02x", b), nrow = 16L)
  part <- function(rows) do.call(paste0, lapply(rows, function(r) hex[r, ]))
  paste(part(1:4), part(5:6), part(7:8), part(9:10), part(11:16), sep = "-")
}

#' A fresh random UUID (version 4, lower case) from OpenSSL's CSPRNG
#'
#' The conformance suite and the event schema want version 4 ids; they are the
#' idempotency key of every event on every hop.
#' @return A character string such as `"0b6f1c2e-...-..."`.
#' @examples
#' wafermon_uuid()
#' @export
wafermon_uuid <- function() {
  i <- .state$uuid_next
  if (i > 256L || .state$uuid_pid != Sys.getpid()) {
    .state$uuids <- .uuid_pool()
    .state$uuid_pid <- Sys.getpid()
    i <- 1L
  }
  .state$uuid_next <- i + 1L
  .state$uuids[[i]]
}

# RFC 3339 UTC with microseconds. format() of a POSIXct costs ~20 us, so the text up to the
# second is formatted once per second and the fraction appended.
.now_rfc3339 <- function(now = unclass(Sys.time())) {
  second <- floor(now)
  if (second != .state$second) {
    .state$second <- second
    .state$second_text <- format(.POSIXct(second, tz = "UTC"), "%Y-%m-%dT%H:%M:%S")
  }
  sprintf("%s.%06dZ", .state$second_text, min(999999L, as.integer((now - second) * 1e6)))
}

.hostname <- function() {
  host <- Sys.info()[["nodename"]]
  if (is.null(host) || !nzchar(host)) "localhost" else host
}

# Peak resident set size of the process in MiB: VmHWM from /proc on Linux (what getrusage's
# ru_maxrss reports in the other SDKs); elsewhere R's own heap high-water mark from gc().
.mem_max_mb <- function() {
  status <- "/proc/self/status"
  if (file.exists(status)) {
    line <- grep("^VmHWM:", readLines(status, warn = FALSE), value = TRUE)
    if (length(line) == 1) {
      kib <- as.numeric(gsub("[^0-9]", "", line))
      if (!is.na(kib)) return(round(kib / 1024, 3))
    }
  }
  used <- gc(verbose = FALSE)
  round(sum(used[, ncol(used)]), 3)
}

# CPU of the process (R runs jobs on one thread), from proc.time(): user and system seconds.
.cpu_now <- function() {
  t <- proc.time()
  c(user = t[["user.self"]], system = t[["sys.self"]], elapsed = t[["elapsed"]])
}

# JSON text of an R value, as jsonlite::toJSON(x, auto_unbox = TRUE, null = "null",
# na = "null") writes it, but about ten times faster for the small nested lists events are
# (jsonlite 1.8 dispatches through S4 per node: ~0.4 ms an event). Strings with nothing to
# escape are quoted directly, the others go through jsonlite; numbers are exact (below).
.to_json <- function(x) {
  if (is.null(x)) return("null")
  if (inherits(x, "json")) return(as.character(x))
  if (is.list(x)) {
    keys <- names(x)
    if (length(x) == 0L) return(if (is.null(keys)) "[]" else "{}")
    parts <- vapply(x, .to_json, "", USE.NAMES = FALSE)
    if (is.null(keys)) return(paste0("[", paste(parts, collapse = ","), "]"))
    return(paste0("{", paste0(.json_string(keys), ":", parts, collapse = ","), "}"))
  }
  values <- if (is.character(x) || is.factor(x) || !is.atomic(x)) {
    .json_string(as.character(x))
  } else if (is.logical(x)) {
    ifelse(is.na(x), "null", ifelse(x, "true", "false"))
  } else if (is.numeric(x) && is.null(oldClass(x))) {
    .json_number(x)
  } else {
    .json_string(as.character(x)) # dates, times and other classed values as their text
  }
  if (length(values) == 1L) values else paste0("[", paste(values, collapse = ","), "]")
}

.json_string <- function(x) {
  x <- enc2utf8(x)
  out <- paste0("\"", x, "\"")
  # encodeString() (C, no regex) escapes quotes, backslashes and control characters: where
  # it changed nothing, the plain quoted text is already valid JSON.
  special <- !is.na(x) & encodeString(x, quote = "\"") != out
  if (any(special)) {
    out[special] <- vapply(x[special], function(s) as.character(jsonlite::toJSON(s, auto_unbox = TRUE)), "")
  }
  out[is.na(x)] <- "null"
  out
}

# jsonlite 1.8 writes at most 15 significant digits, which changes 9007199254740991 and
# 0.1 + 0.2; a number that 15 digits do not give back exactly is written with 17.
.json_number <- function(x) {
  if (is.integer(x)) return(ifelse(is.na(x), "null", as.character(x)))
  text <- sprintf("%.15g", x)
  inexact <- is.finite(x) & suppressWarnings(as.numeric(text)) != x
  text[inexact] <- sprintf("%.17g", x[inexact])
  text[!is.finite(x)] <- "null"
  text
}

.metadata_cap <- 16384L

# Metadata above the schema's cap is replaced, never the event dropped (PROTOCOL.md).
.capped_metadata <- function(metadata, client) {
  if (is.null(metadata)) return(NULL)
  size <- nchar(.to_json(metadata), type = "bytes")
  if (size <= .metadata_cap) return(metadata)
  client$counters$metadata_truncated <- client$counters$metadata_truncated + 1
  list(wafermon_sdk_truncated = sprintf(
    "metadata of %d bytes was above the %d-byte cap and was dropped", size, .metadata_cap
  ))
}

.log <- function(...) message("wafermon: ", ...)
