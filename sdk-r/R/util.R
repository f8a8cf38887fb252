# Event ids, times, process figures and JSON: the pieces every event is made of.

.state <- new.env(parent = emptyenv())
.state$rand <- raw(0)
.state$rand_pos <- 0L
.state$rand_pid <- 0L
.state$second <- -1
.state$second_text <- ""
.state$stack <- list()

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

#' A fresh random UUID (version 4, lower case) from OpenSSL's CSPRNG
#'
#' The conformance suite and the event schema want version 4 ids; they are the
#' idempotency key of every event on every hop.
#' @return A character string such as `"0b6f1c2e-...-..."`.
#' @examples
#' wafermon_uuid()
#' @export
wafermon_uuid <- function() {
  b <- .random_bytes(16L)
  b[7] <- as.raw(bitwOr(bitwAnd(as.integer(b[7]), 0x0f), 0x40))
  b[9] <- as.raw(bitwOr(bitwAnd(as.integer(b[9]), 0x3f), 0x80))
  h <- paste(as.character(b), collapse = "")
  paste(substr(h, 1, 8), substr(h, 9, 12), substr(h, 13, 16), substr(h, 17, 20),
    substr(h, 21, 32),
    sep = "-"
  )
}

# RFC 3339 UTC with microseconds. format() of a POSIXct costs ~20 us, so the text up to the
# second is formatted once per second and the fraction appended.
.now_rfc3339 <- function(now = unclass(Sys.time())) {
  second <- floor(now)
  if (second != .state$second) {
    .state$second <- second
    .state$second_text <- format(.POSIXct(second, tz = "UTC"), "%Y-%m-%dT%H:%M:%S")
  }
  micros <- min(999999L, as.integer((now - second) * 1e6))
  paste0(.state$second_text, ".", formatC(micros, width = 6, flag = "0"), "Z")
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

.to_json <- function(x) {
  jsonlite::toJSON(.exact_numbers(x),
    auto_unbox = TRUE, null = "null", na = "null", digits = NA, force = TRUE, json_verbatim = TRUE
  )
}

# jsonlite 1.8 writes at most 15 significant digits, which changes 9007199254740991 and
# 0.1 + 0.2. Numbers that 15 digits do not give back exactly are written with 17 (as JSON
# text jsonlite inserts verbatim), so a value survives the trip through the SDK.
.exact_numbers <- function(x) {
  if (is.list(x)) {
    if (length(x)) x[] <- lapply(x, .exact_numbers)
    return(x)
  }
  if (!is.double(x) || length(x) == 0L || !is.null(dim(x))) return(x)
  finite <- is.finite(x)
  short <- formatC(x, digits = 15L, format = "g")
  exact <- !finite | suppressWarnings(as.numeric(short)) == x
  if (all(exact)) return(x)
  text <- ifelse(exact, ifelse(finite, trimws(short), "null"), sprintf("%.17g", x))
  if (length(x) == 1L) structure(text, class = "json") else structure(paste0("[", paste(text, collapse = ","), "]"), class = "json")
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
