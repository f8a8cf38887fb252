# Monitored jobs and subjobs: started, progress, finished/failed, with duration, CPU and memory.

.usage_error <- function(message) {
  stop(structure(
    class = c("wafermon_usage_error", "error", "condition"),
    list(message = message, call = NULL)
  ))
}

.default_app_name <- function() {
  file <- grep("^--file=", commandArgs(FALSE), value = TRUE)
  name <- if (length(file)) tools::file_path_sans_ext(basename(sub("^--file=", "", file[1]))) else "R"
  if (nzchar(name)) substr(name, 1, 128) else "R"
}

.check_key <- function(value, field) {
  if (is.null(value)) return(NULL)
  if (!is.character(value) || length(value) != 1L || is.na(value) || !nzchar(value) || nchar(value) > 256L) {
    .usage_error(paste0(field, ": expected a string of 1 to 256 characters, got ", .show(value)))
  }
  value
}

.check_app <- function(app) {
  if (is.null(app)) app <- .default_app_name()
  if (is.character(app) && length(app) == 1L) app <- list(name = app)
  if (!is.list(app) || !is.character(app$name) || length(app$name) != 1L ||
    !nzchar(app$name) || nchar(app$name) > 128L) {
    .usage_error("app: expected a name (1 to 128 characters) or list(name, version, app_id)")
  }
  if (!is.null(app$version) && (!is.character(app$version) || nchar(app$version) > 64L)) {
    .usage_error(paste0("app$version: expected a string of at most 64 characters, got ", .show(app$version)))
  }
  if (!is.null(app$app_id) && !grepl("^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", app$app_id)) {
    .usage_error(paste0("app$app_id: expected a lower-case UUID, got ", .show(app$app_id)))
  }
  app[c("name", "version", "app_id")[c(TRUE, !is.null(app$version), !is.null(app$app_id))]]
}

.check_metadata <- function(metadata, field = "metadata") {
  if (is.null(metadata)) return(NULL)
  if (!is.list(metadata) || (length(metadata) && (is.null(names(metadata)) || any(!nzchar(names(metadata)))))) {
    .usage_error(paste0(field, ": expected a named list"))
  }
  metadata
}

# The `source` object of this process, encoded once per pid.
.source_json <- function() {
  pid <- Sys.getpid()
  if (!identical(.state$source_pid, pid)) {
    .state$source_pid <- pid
    .state$source_json <- .to_json(list(host = .hostname(), pid = pid, sdk = "wafermon-sdk-r", sdk_version = .sdk_version()))
  }
  .state$source_json
}

.strip_braces <- function(json) substr(json, 2L, nchar(json) - 1L)

.set_metadata <- function(job, metadata) {
  job$metadata <- metadata
  capped <- .capped_metadata(if (length(metadata)) metadata else NULL, job$client)
  job$metadata_json <- if (is.null(capped)) "" else paste0(',"metadata":', .to_json(capped))
}

#' Start a monitored job or subjob by hand
#'
#' Emits `started`. Prefer [with_monitored()], which also ends the job; use these calls when
#' a job's start and end happen in different places (callbacks, a Shiny session, a driver).
#'
#' @param app The application: a name, or `list(name, version, app_id)` (default: the
#'   script's file name).
#' @param business_key Your key for the job (a lot id, a file name), at most 256 characters.
#'   A subjob without one takes its parent's (so a query by lot finds its wafers).
#' @param entity_type `"job"` or `"subjob"`.
#' @param sub_key A subjob's key within its parent (a wafer id).
#' @param parent The parent job (a `wafermon_job`) of a subjob; default: the innermost
#'   running [with_monitored()] job.
#' @param metadata A named list, carried by every event of the job; above 16 KiB of JSON it
#'   is replaced by `list(wafermon_sdk_truncated = "<why>")`.
#' @param site_id Default: the client's (`WAFERMON_SITE_ID`).
#' @param entity_id Default: a fresh UUID.
#' @inheritParams wafermon_flush
#' @return A `wafermon_job` (an environment); [job_id()] gives its id.
#' @export
job_start <- function(app = NULL, business_key = NULL, entity_type = "job", sub_key = NULL,
                      parent = NULL, metadata = NULL, site_id = NULL, entity_id = NULL,
                      client = NULL) {
  if (!is.character(entity_type) || length(entity_type) != 1L || !entity_type %in% c("job", "subjob")) {
    .usage_error(paste0("entity_type: must be job or subjob, got ", .show(entity_type)))
  }
  if (entity_type == "subjob" && is.null(parent)) parent <- wafermon_current()
  if (entity_type == "subjob" && !inherits(parent, "wafermon_job")) {
    .usage_error("parent: a subjob needs its parent job (a wafermon_job, or run it inside with_monitored())")
  }
  client <- client %||% (if (!is.null(parent)) parent$client) %||% wafermon_client()
  site_id <- site_id %||% client$settings$site_id
  if (is.null(site_id)) .usage_error("site_id: the client has none (set WAFERMON_SITE_ID)")
  if (!grepl(.site_id_pattern, site_id, perl = TRUE)) .usage_error(paste0("site_id: not a valid site id: ", .show(site_id)))
  job <- new.env(parent = emptyenv())
  class(job) <- "wafermon_job"
  job$client <- client
  job$id <- .check_key(entity_id, "entity_id") %||% wafermon_uuid()
  job$type <- entity_type
  job$app <- .check_app(app %||% (if (!is.null(parent)) parent$app))
  entity <- list(type = entity_type, id = job$id)
  if (entity_type == "subjob") entity$parent_id <- parent$id
  # A subjob without its own key, started inside its parent's with_monitored(), takes the
  # parent's (the lot's), so a query by business key finds the lot's wafers too. As in the
  # Python SDK, a subjob started by handle alone (outside its parent's block) does not.
  entity$business_key <- .check_key(business_key, "business_key") %||%
    (if (entity_type == "subjob") parent$business_key)
  job$business_key <- entity$business_key
  entity$sub_key <- .check_key(sub_key, "sub_key")
  job$fixed_json <- paste0(",", .strip_braces(.to_json(list(site_id = site_id, app = job$app, entity = entity))))
  job$site_id <- site_id
  .set_metadata(job, .check_metadata(metadata))
  job$status <- "running"
  job$progress <- NULL
  job$start <- .cpu_now()
  .emit_lifecycle(job, "started", "")
  job
}

#' @export
print.wafermon_job <- function(x, ...) {
  cat("<wafermon_job ", x$type, " ", x$id, " ", x$status, ">\n", sep = "")
  invisible(x)
}

#' The id of a job
#' @param job A `wafermon_job`.
#' @return Its entity id (a string).
#' @export
job_id <- function(job) job$id

.num <- function(x) sprintf("%.6f", max(0, x))

.emit_lifecycle <- function(job, kind, metrics, error = "", urgent = FALSE) {
  time <- .now_rfc3339()
  line <- paste0(
    '{"schema_version":1,"event_id":"', wafermon_uuid(), '","kind":"', kind, '","time":"', time, '"',
    job$fixed_json, metrics, job$metadata_json, error, ',"source":', .source_json(), "}"
  )
  .enqueue(job$client, line, job$site_id, time, urgent)
}

.check_running <- function(job) {
  if (!inherits(job, "wafermon_job")) .usage_error("job: expected a wafermon_job")
  if (!identical(job$status, "running")) .usage_error(paste0("job ", job$id, " has already ", job$status))
}

#' Report progress of a job
#'
#' Emits `progress` with the duration so far.
#' @param job A `wafermon_job`.
#' @param progress A number from 0 to 1 (clamped), or `NULL`.
#' @param metadata A named list merged (top-level keys) into the job's metadata.
#' @return `TRUE` if the event was queued (invisibly).
#' @export
job_tick <- function(job, progress = NULL, metadata = NULL) {
  .check_running(job)
  if (!is.null(metadata)) {
    patch <- .check_metadata(metadata)
    merged <- job$metadata %||% list()
    for (name in names(patch)) merged[name] <- list(patch[[name]])
    .set_metadata(job, merged)
  }
  elapsed <- proc.time()[["elapsed"]] - job$start[["elapsed"]]
  metrics <- paste0(',"metrics":{"duration_s":', .num(elapsed))
  if (!is.null(progress)) {
    if (!is.numeric(progress) || length(progress) != 1L) .usage_error("progress: expected a number from 0 to 1")
    if (!is.na(progress)) {
      job$progress <- min(1, max(0, progress))
      metrics <- paste0(metrics, ',"progress":', .num(job$progress))
    }
  }
  invisible(.emit_lifecycle(job, "progress", paste0(metrics, "}")))
}

.final_metrics <- function(job) {
  now <- .cpu_now()
  paste0(
    ',"metrics":{"duration_s":', .num(now[["elapsed"]] - job$start[["elapsed"]]),
    ',"cpu_user_s":', .num(now[["user"]] - job$start[["user"]]),
    ',"cpu_system_s":', .num(now[["system"]] - job$start[["system"]]),
    ',"mem_max_mb":', .num(.mem_max_mb()),
    if (!is.null(job$progress)) paste0(',"progress":', .num(job$progress)) else "", "}"
  )
}

#' End a job
#'
#' `job_finish()` emits `finished`, `job_fail()` emits `failed` with the error's class as
#' `error.type` (`class(error)[1]`, e.g. `simpleError` or your condition class), its message
#' and, when given, a stack. Both carry duration, CPU (`proc.time()`) and peak memory. A
#' top-level job's end sends its batch at once.
#' @param job A `wafermon_job`.
#' @return `TRUE` if the event was queued (invisibly).
#' @export
job_finish <- function(job) {
  .check_running(job)
  job$status <- "finished"
  invisible(.emit_lifecycle(job, "finished", .final_metrics(job), urgent = job$type == "job"))
}

#' @rdname job_finish
#' @param error A condition, a message string, or `list(type, message)`.
#' @param stack Text of the call stack (optional; [with_monitored()] records it).
#' @export
job_fail <- function(job, error, stack = NULL) {
  .check_running(job)
  if (inherits(error, "condition")) {
    type <- class(error)[1]
    message <- conditionMessage(error)
  } else if (is.list(error)) {
    type <- as.character(error$type %||% "error")
    message <- as.character(error$message %||% "")
  } else {
    type <- "simpleError"
    message <- as.character(error)
  }
  if (!nzchar(type)) type <- "error"
  err <- list(type = substr(type, 1L, 256L), message = substr(paste(message, collapse = "\n"), 1L, 8192L))
  if (!is.null(stack) && nzchar(stack)) {
    n <- nchar(stack)
    err$stack <- if (n > 65536L) substr(stack, n - 65535L, n) else stack
  }
  job$status <- "failed"
  invisible(.emit_lifecycle(job, "failed", .final_metrics(job),
    error = paste0(',"error":', .to_json(err)), urgent = job$type == "job"
  ))
}

#' The innermost running with_monitored() job
#' @return A `wafermon_job`, or `NULL` outside [with_monitored()].
#' @export
wafermon_current <- function() {
  stack <- .state$stack
  if (length(stack)) stack[[length(stack)]] else NULL
}

.format_stack <- function(calls) {
  text <- vapply(calls, function(cl) paste(deparse(cl, nlines = 1L, width.cutoff = 200L), collapse = ""), "")
  paste(rev(text), collapse = "\n")
}

#' Run code as a monitored job
#'
#' Emits `started`, evaluates `expr`, then `finished` with its figures, or `failed` if an
#' error (or an interrupt) leaves `expr`: the condition's class, message and call stack are
#' recorded, and the error still propagates to you. Leaving `expr` by `return()` or `break`
#' is a normal end. Warnings are counted and the first ten
#' kept: the `finished`/`failed` event's metadata gets `warnings` (how many) and
#' `warning_messages`; they are still shown as usual. Inside another `with_monitored()`, the
#' block is a subjob of it (`job` is then its `sub_key`; its `business_key` is the parent's),
#' and [tick()] reports progress of
#' the innermost one.
#'
#' @param job The job's key: its `business_key` (a lot id), or a subjob's `sub_key`.
#' @param expr The code to run.
#' @param app,metadata,client As for [job_start()] (a subjob inherits its parent's app).
#' @param entity_type Default: `"job"`, or `"subjob"` inside a running job.
#' @return The value of `expr`.
#' @examples
#' root <- file.path(tempdir(), "events")
#' wafermon_init(list(
#'   mode = "direct", direct_url = paste0("file://", root), site_id = "fab1",
#'   spool_dir = file.path(tempdir(), "spool")
#' ))
#' with_monitored("LOT-12345", app = "yield-spc", metadata = list(tool = "etch-07"), {
#'   for (w in c("W01", "W02")) {
#'     with_monitored(w, {
#'       tick(0.5, metadata = list(step = "fit"))
#'     })
#'   }
#' })
#' wafermon_close()
#' @export
with_monitored <- function(job, expr, app = NULL, metadata = NULL, entity_type = NULL, client = NULL) {
  parent <- wafermon_current()
  type <- entity_type %||% (if (is.null(parent)) "job" else "subjob")
  handle <- job_start(
    app = app, metadata = metadata, entity_type = type, parent = if (type == "subjob") parent,
    business_key = if (type == "job") job, sub_key = if (type == "subjob") job, client = client
  )
  depth <- length(.state$stack) + 1L
  .state$stack[[depth]] <- handle
  captured <- NULL
  stack <- NULL
  warnings <- character()
  count <- 0L
  done <- FALSE
  on.exit({
    length(.state$stack) <- depth - 1L
    if (count > 0L) {
      merged <- handle$metadata %||% list()
      merged$warnings <- count
      merged$warning_messages <- as.list(warnings)
      .set_metadata(handle, merged)
    }
    if (identical(handle$status, "running")) {
      # Left by an error or an interrupt: failed. Returned normally, or left by return(),
      # break or a restart with no condition on the way: finished.
      if (done || is.null(captured)) job_finish(handle) else job_fail(handle, captured, stack)
    }
  })
  value <- withCallingHandlers(expr,
    error = function(e) {
      captured <<- e
      calls <- sys.calls()
      # Drop this handler's own frames (R's condition machinery), keep the caller's.
      keep <- !vapply(calls, function(cl) {
        f <- cl[[1]]
        is.function(f) || identical(f, quote(.handleSimpleError)) || identical(f, quote(h))
      }, TRUE)
      stack <<- .format_stack(calls[keep])
    },
    interrupt = function(i) {
      captured <<- list(type = "interrupt", message = "interrupted")
    },
    warning = function(w) {
      count <<- count + 1L
      if (length(warnings) < 10L) warnings <<- c(warnings, substr(conditionMessage(w), 1L, 500L))
    }
  )
  done <- TRUE
  value
}

#' Report progress of the innermost running job
#'
#' @inheritParams job_tick
#' @return `TRUE` if the event was queued (invisibly); `FALSE` outside [with_monitored()].
#' @export
tick <- function(progress = NULL, metadata = NULL) {
  job <- wafermon_current()
  if (is.null(job)) return(invisible(FALSE))
  job_tick(job, progress, metadata)
}
