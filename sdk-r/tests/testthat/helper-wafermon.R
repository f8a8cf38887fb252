# Helpers: a clean WAFERMON_* environment, private folders, reading JSON Lines back, and a
# real `wafermon sidecar` process (the Python host, found through WAFERMON_BIN or PATH).

# Unset every WAFERMON_* variable, then set the given ones, until the calling test ends.
clean_env <- function(..., .env = parent.frame()) {
  old <- grep("^WAFERMON_", names(Sys.getenv()), value = TRUE)
  old <- setdiff(old, c("WAFERMON_BIN", "WAFERMON_REQUIRE_SERVERS")) # the tests' own
  withr::local_envvar(c(stats::setNames(rep(NA_character_, length(old)), old), c(...)), .local_envir = .env)
}

fresh_dir <- function(name = "wm") {
  path <- tempfile(name)
  dir.create(path, recursive = TRUE)
  normalizePath(path)
}

read_jsonl <- function(root) {
  files <- list.files(root, pattern = "\\.jsonl$", recursive = TRUE, full.names = TRUE)
  lines <- unlist(lapply(files, readLines, warn = FALSE))
  lapply(lines[nzchar(lines)], jsonlite::fromJSON, simplifyVector = FALSE)
}

of <- function(events, id, kind) {
  Filter(function(e) identical(e$entity$id, id) && identical(e$kind, kind), events)
}

# A server test fails when the server is missing under CI or WAFERMON_REQUIRE_SERVERS, and
# is skipped elsewhere (a developer without the Python hosts installed).
need_server <- function(why) {
  if (nzchar(Sys.getenv("CI")) || nzchar(Sys.getenv("WAFERMON_REQUIRE_SERVERS"))) stop(why, call. = FALSE)
  testthat::skip(why)
}

wafermon_bin <- function() {
  bin <- Sys.getenv("WAFERMON_BIN")
  if (!nzchar(bin)) bin <- Sys.which("wafermon")
  if (!nzchar(bin) || !file.exists(bin)) need_server("the wafermon command was not found (set WAFERMON_BIN)")
  if (!requireNamespace("processx", quietly = TRUE)) need_server("the processx package is needed to run the sidecar")
  bin
}

free_port <- function() {
  for (i in 1:50) {
    port <- sample(20000:60000, 1)
    sock <- tryCatch(serverSocket(port), error = function(e) NULL)
    if (!is.null(sock)) {
      close(sock)
      return(port)
    }
  }
  stop("no free port")
}

# Start `wafermon sidecar` with a filesystem backend under workdir/events on `port`; returns
# once /v1/healthz answers 200, failing with the log's tail if it does not come up.
start_sidecar <- function(workdir, port = free_port()) {
  bin <- wafermon_bin()
  sc <- list(
    port = port, url = sprintf("http://127.0.0.1:%d", port),
    events = file.path(workdir, "events"), log = file.path(workdir, sprintf("sidecar-%d.log", port))
  )
  config <- file.path(workdir, sprintf("site-%d.yaml", port))
  writeLines(c(
    "site_id: fab1",
    sprintf("sidecar: {listen: \"127.0.0.1:%d\", spool: {dir: \"%s/sidecar-spool\"}}", port, workdir),
    "backends:",
    sprintf("  - {name: archive, type: filesystem, config: {root: \"%s\", fsync: true}}", sc$events)
  ), config)
  sc$proc <- processx::process$new(bin, c("sidecar", "--config", config, "--log-level", "warning"),
    stdout = sc$log, stderr = "2>&1", cleanup = TRUE,
    # R puts its own library folders on LD_LIBRARY_PATH; the Python host must not load
    # the system's libpython from there instead of its own interpreter's.
    env = c("current", LD_LIBRARY_PATH = Sys.getenv("WAFERMON_TEST_LD_LIBRARY_PATH"))
  )
  deadline <- Sys.time() + 60
  while (Sys.time() < deadline) {
    status <- tryCatch(curl::curl_fetch_memory(paste0(sc$url, "/v1/healthz"))$status_code, error = function(e) 0L)
    if (status == 200L) return(sc)
    if (!sc$proc$is_alive()) break
    Sys.sleep(0.1)
  }
  log <- if (file.exists(sc$log)) paste(utils::tail(readLines(sc$log), 30), collapse = "\n") else ""
  sc$proc$kill()
  stop("the sidecar did not come up; its log:\n", log, call. = FALSE)
}

stop_sidecar <- function(sc) {
  if (sc$proc$is_alive()) {
    sc$proc$signal(15L)
    sc$proc$wait(30000)
    if (sc$proc$is_alive()) sc$proc$kill()
  }
}

# The backend writes after the sidecar's 202: wait until `want` events are on disk.
wait_for_events <- function(root, want, seconds = 30) {
  deadline <- Sys.time() + seconds
  repeat {
    events <- read_jsonl(root)
    if (length(events) >= want || Sys.time() > deadline) return(events)
    Sys.sleep(0.1)
  }
}
