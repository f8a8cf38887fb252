# The R SDK's conformance driver: JSON lines over stdin/stdout (conformance/PROTOCOL.md).
#
# One request per line in, exactly one response per line out, in order, flushed. Every
# request goes through the public wafermon API as an application would use it:
# wafermon_init() from the environment, job_start()/job_tick()/job_finish()/job_fail()
# (a job's steps arrive as separate requests, so with_monitored() cannot wrap them),
# emit_event()/emit_batch() with events in wire form (lists), wafermon_flush(),
# wafermon_close(), wafermon_stats(). It never writes wire JSON itself. The SDK's messages go
# to stderr; stdout carries responses only. A bad request is answered ok: false.

# The package as conformance/languages.toml's build installed it (sdk-r/build/lib), else the
# one installed on the system.
local({
  me <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE)[1])
  lib <- file.path(dirname(dirname(normalizePath(me))), "build", "lib")
  if (dir.exists(lib)) .libPaths(c(lib, .libPaths()))
})
suppressPackageStartupMessages(library(wafermon))

out <- stdout()
handles <- new.env(parent = emptyenv())
client <- NULL

refuse <- function(kind, message) {
  stop(structure(class = c("driver_refusal", "error", "condition"), list(message = message, call = NULL, kind = kind)))
}

need <- function(request, name, check, what) {
  value <- request[[name]]
  if (is.null(value) || !check(value)) refuse("protocol", paste0(name, ": expected ", what))
  value
}

is_string <- function(x) is.character(x) && length(x) == 1L
is_object <- function(x) is.list(x) && (length(x) == 0L || !is.null(names(x)))

handle_of <- function(request, name = "handle") {
  key <- need(request, name, is_string, "a string")
  job <- handles[[key]]
  if (is.null(job)) refuse("usage", paste0("unknown handle '", key, "'"))
  job
}

close_client <- function(timeout = NULL) {
  if (!is.null(client)) wafermon_close(timeout, client = client)
  client <<- NULL
  rm(list = ls(handles), envir = handles)
}

ops <- list(
  hello = function(request) {
    list(language = "r", sdk = "wafermon-sdk-r", sdk_version = as.character(packageVersion("wafermon")), protocol = 1L)
  },
  init = function(request) {
    env <- need(request, "env", is_object, "an object of string to string")
    if (!all(vapply(env, is_string, TRUE))) refuse("protocol", "env: expected an object of string to string")
    close_client(2)
    old <- grep("^WAFERMON_", names(Sys.getenv()), value = TRUE)
    if (length(old)) Sys.unsetenv(old)
    if (length(env)) do.call(Sys.setenv, env)
    client <<- tryCatch(wafermon_init(), wafermon_config_error = function(e) refuse("config", conditionMessage(e)))
    list()
  },
  start = function(request) {
    if (is.null(client)) refuse("usage", "no client: send init first")
    key <- need(request, "handle", is_string, "a string")
    if (!is.null(handles[[key]])) refuse("usage", paste0("handle '", key, "' is in use"))
    app <- need(request, "app", is_object, "an object")
    parent <- if (!is.null(request$parent)) handle_of(request, "parent")
    job <- job_start(
      app = app, entity_type = request$entity_type %||% "job", business_key = request$business_key,
      sub_key = request$sub_key, parent = parent, metadata = request$metadata, client = client
    )
    assign(key, job, envir = handles)
    list(entity_id = job_id(job))
  },
  progress = function(request) {
    progress <- request$progress
    if (!is.null(progress) && !(is.numeric(progress) && length(progress) == 1L)) {
      refuse("protocol", "progress: expected a number")
    }
    job_tick(handle_of(request), progress = progress, metadata = request$metadata)
    list()
  },
  finish = function(request) {
    job_finish(handle_of(request))
    list()
  },
  fail = function(request) {
    job <- handle_of(request)
    error <- need(request, "error", is_object, "an object")
    type <- error$type
    if (!is_string(type) || !nzchar(type)) refuse("protocol", "error.type: expected a non-empty string")
    # Signalled and caught, as in an application: the SDK reports the condition's class.
    tryCatch(
      stop(errorCondition(as.character(error$message %||% ""), class = type)),
      error = function(e) job_fail(job, e, stack = paste(deparse(conditionCall(e)), collapse = ""))
    )
    list()
  },
  emit_event = function(request) {
    event <- need(request, "event", is_object, "an object")
    list(queued = isTRUE(suppressWarnings(emit_event(event, client = client))))
  },
  emit_batch = function(request) {
    events <- need(request, "events", is.list, "an array")
    list(queued = suppressWarnings(emit_batch(events, client = client)))
  },
  flush = function(request) {
    timeout <- request$timeout
    list(delivered = isTRUE(wafermon_flush(timeout, client = client)))
  },
  close = function(request) {
    close_client(request$timeout)
    list()
  },
  stats = function(request) {
    if (is.null(client)) refuse("usage", "no client: send init first")
    list(stats = wafermon_stats(client))
  },
  quit = function(request) {
    close_client(2)
    list()
  }
)

`%||%` <- function(a, b) if (is.null(a)) b else a

answer <- function(response) {
  writeLines(as.character(jsonlite::toJSON(response, auto_unbox = TRUE, null = "null", digits = NA)), out)
  flush(out)
}

input <- file("stdin", open = "r")
repeat {
  line <- readLines(input, n = 1L, warn = FALSE)
  if (length(line) == 0L) break
  if (!nzchar(trimws(line))) next
  request <- tryCatch(jsonlite::fromJSON(line, simplifyVector = FALSE), error = function(e) NULL)
  seq <- if (is.list(request) && !is.null(request$seq)) request$seq else NULL
  op <- if (is.list(request)) request$op else NULL
  response <- tryCatch(
    {
      if (!is_string(op) || is.null(ops[[op]])) refuse("protocol", paste0("unknown op: ", format(op)))
      c(list(seq = seq, ok = TRUE), ops[[op]](request))
    },
    driver_refusal = function(e) list(seq = seq, ok = FALSE, error = list(kind = e$kind, message = conditionMessage(e))),
    wafermon_config_error = function(e) list(seq = seq, ok = FALSE, error = list(kind = "config", message = conditionMessage(e))),
    wafermon_usage_error = function(e) list(seq = seq, ok = FALSE, error = list(kind = "usage", message = conditionMessage(e))),
    error = function(e) list(seq = seq, ok = FALSE, error = list(kind = "internal", message = conditionMessage(e)))
  )
  answer(response)
  if (identical(op, "quit")) break
}
quit(save = "no", status = 0)
