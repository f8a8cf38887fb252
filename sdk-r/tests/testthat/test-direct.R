# Direct mode: the file tree the filesystem backend writes, read back here.

direct_client <- function(dir, ...) {
  wafermon_init(list(
    mode = "direct", direct_url = paste0("file://", dir, "/events"), site_id = "fab1",
    spool_dir = file.path(dir, "spool"), flush_interval = "10s", ...
  ))
}

test_that("with_monitored reports a job, its subjobs, progress and figures", {
  clean_env()
  dir <- fresh_dir()
  client <- direct_client(dir)
  value <- with_monitored("LOT-1", app = list(name = "yield-spc", version = "2.1"), metadata = list(tool = "etch-07"), {
    outer <- wafermon_current()
    for (w in c("W01", "W02")) {
      with_monitored(w, {
        expect_equal(wafermon_current()$type, "subjob")
        tick(0.5, metadata = list(step = "fit"))
        x <- 0
        for (i in 1:200000) x <- x + i # some CPU for the figures
      })
    }
    tick(2)
    "done"
  })
  expect_equal(value, "done")
  expect_null(wafermon_current())
  expect_true(wafermon_close(5))
  events <- read_jsonl(file.path(dir, "events"))
  expect_length(events, 9)
  expect_true(all(vapply(events, function(e) e$source$pid == Sys.getpid() && e$source$sdk == "wafermon-sdk-r", TRUE)))
  job <- Filter(function(e) e$entity$type == "job", events)
  expect_equal(vapply(job, `[[`, "", "kind"), c("started", "progress", "finished"))
  expect_equal(job[[1]]$entity$business_key, "LOT-1")
  expect_equal(job[[1]]$app, list(name = "yield-spc", version = "2.1"))
  expect_equal(job[[1]]$metadata, list(tool = "etch-07"))
  expect_null(job[[1]]$metrics)
  expect_equal(job[[2]]$metrics$progress, 1) # clamped
  fin <- job[[3]]$metrics
  expect_true(fin$duration_s >= 0 && fin$cpu_user_s > 0 && fin$cpu_system_s >= 0 && fin$mem_max_mb > 1)
  subs <- Filter(function(e) e$entity$type == "subjob", events)
  expect_length(subs, 6)
  expect_true(all(vapply(subs, function(e) identical(e$entity$parent_id, job[[1]]$entity$id), TRUE)))
  expect_equal(sort(unique(vapply(subs, function(e) e$entity$sub_key, ""))), c("W01", "W02"))
  progress <- Filter(function(e) e$kind == "progress", subs)[[1]]
  expect_equal(progress$metrics$progress, 0.5)
  expect_equal(progress$metadata, list(step = "fit"))
  day <- substr(events[[1]]$time, 1, 10)
  expect_true(file.exists(file.path(dir, "events", "fab1", day, "events.jsonl")))
})

test_that("an error fails the job with its class, message and stack, and still propagates", {
  clean_env()
  dir <- fresh_dir()
  direct_client(dir)
  lot_aborted <- function() stop(errorCondition("chamber door open", class = "LotAbortedError"))
  expect_error(with_monitored("LOT-2", {
    warning("pressure high")
    lot_aborted()
  }), class = "LotAbortedError") |> expect_warning("pressure high")
  caught <- tryCatch(with_monitored("LOT-3", stop("plain")), error = function(e) e)
  expect_equal(conditionMessage(caught), "plain")
  ok <- with_monitored("LOT-4", tryCatch(stop("handled inside"), error = function(e) "recovered"))
  expect_equal(ok, "recovered")
  wafermon_close(5)
  events <- read_jsonl(file.path(dir, "events"))
  failed <- Filter(function(e) e$kind == "failed", events)
  expect_length(failed, 2)
  expect_equal(failed[[1]]$error$type, "LotAbortedError")
  expect_equal(failed[[1]]$error$message, "chamber door open")
  expect_match(failed[[1]]$error$stack, "lot_aborted()", fixed = TRUE)
  expect_equal(failed[[1]]$metadata$warnings, 1)
  expect_equal(failed[[1]]$metadata$warning_messages, list("pressure high"))
  expect_equal(failed[[2]]$error$type, "simpleError")
  expect_true(all(c("duration_s", "cpu_user_s", "cpu_system_s", "mem_max_mb") %in% names(failed[[1]]$metrics)))
  finished <- Filter(function(e) e$kind == "finished", events)
  expect_length(finished, 1) # LOT-4: an error handled inside the block is no failure
})

test_that("job_* calls check their arguments and name the field", {
  clean_env()
  dir <- fresh_dir()
  client <- direct_client(dir)
  expect_error(job_start(app = "x", entity_type = "task"), "entity_type: must be job or subjob", class = "wafermon_usage_error")
  expect_error(job_start(app = "x", entity_type = "subjob"), "parent: a subjob needs", class = "wafermon_usage_error")
  expect_error(job_start(app = "x", business_key = ""), "business_key: expected a string", class = "wafermon_usage_error")
  expect_error(job_start(app = "x", metadata = list(1, 2)), "metadata: expected a named list", class = "wafermon_usage_error")
  expect_error(job_start(app = list(name = "x", app_id = "NOT-A-UUID")), "app\\$app_id", class = "wafermon_usage_error")
  expect_error(job_start(app = "x", site_id = "fab 1"), "site_id: not a valid site id", class = "wafermon_usage_error")
  job <- job_start(app = "x", entity_id = "my-id")
  expect_equal(job_id(job), "my-id")
  job_finish(job)
  expect_error(job_finish(job), "has already finished", class = "wafermon_usage_error")
  wafermon_close(5)
  nosite <- wafermon_init(list(mode = "direct", direct_url = paste0("file://", dir, "/e2"), spool_dir = file.path(dir, "s2")))
  expect_error(job_start(app = "x"), "site_id: the client has none \\(set WAFERMON_SITE_ID\\)", class = "wafermon_usage_error")
  wafermon_close(1, client = nosite)
})

test_that("wire events pass through; invalid ones are refused by field", {
  clean_env()
  dir <- fresh_dir()
  client <- direct_client(dir)
  good <- list(
    schema_version = 1, event_id = "3f0c1e8a-2b4d-4c6e-8f10-a1b2c3d4e5f6", kind = "started",
    time = "2026-11-28T09:30:00.5Z", site_id = "fab2", app = list(name = "etch"),
    entity = list(type = "job", id = "wire-1"), metadata = list(empty = setNames(list(), character()), list = list(1, "a"))
  )
  bad <- modifyList(good, list(kind = "begun", event_id = "4f0c1e8a-2b4d-4c6e-8f10-a1b2c3d4e5f6"))
  expect_warning(expect_equal(emit_batch(list(good, bad)), 1L), "kind: must be one of")
  expect_true(emit_event(as.character(jsonlite::toJSON(modifyList(good, list(event_id = "5f0c1e8a-2b4d-4c6e-8f10-a1b2c3d4e5f6", time = "2026-11-29T00:00:00Z")), auto_unbox = TRUE))))
  expect_warning(expect_false(emit_event(list(kind = "started"))), "schema_version: required")
  expect_true(wafermon_flush(5))
  stats <- wafermon_stats()
  expect_equal(stats$rejected, 2)
  expect_equal(stats$sent, 2)
  wafermon_close(5)
  day1 <- read_jsonl(file.path(dir, "events", "fab2", "2026-11-28"))
  expect_length(day1, 1)
  expect_equal(day1[[1]]$metadata, list(empty = setNames(list(), character()), list = list(1L, "a")))
  expect_length(read_jsonl(file.path(dir, "events", "fab2", "2026-11-29")), 1)
  expect_false(emit_event(good, client = client)) # closed
})

test_that("an unwritable target spools privately; a new client replays it on start", {
  clean_env()
  withr::local_options(wafermon.replayer = FALSE)
  dir <- fresh_dir()
  writeLines("not a folder", file.path(dir, "events")) # the direct root is a file: writes fail
  client <- direct_client(dir, max_retries = 1, retry_base_delay = "10ms")
  with_monitored("LOT-5", app = "x", tick(0.3))
  expect_false(wafermon_close(2))
  spool <- file.path(dir, "spool", "direct")
  files <- list.files(spool, full.names = TRUE)
  expect_length(files, 1)
  expect_match(basename(files), "^[0-9]{19}-[0-9]+-[0-9]{6}-[0-9a-f]{8}\\.ndjson$")
  expect_equal(as.character(file.mode(spool)), "700")
  expect_equal(as.character(file.mode(files)), "600")
  expect_length(readLines(files), 3)
  expect_equal(wafermon_stats(client)$spooled, 3)
  unlink(file.path(dir, "events"))
  again <- direct_client(dir) # replays what the first client left
  expect_length(list.files(spool, pattern = "ndjson$"), 0)
  expect_equal(wafermon_stats(again)$replayed, 3)
  wafermon_close(2)
  expect_length(read_jsonl(file.path(dir, "events")), 3)
})

test_that("batches go out when full or after the flush interval, not per event", {
  clean_env()
  dir <- fresh_dir()
  client <- direct_client(dir, batch_size = 5)
  job <- job_start(app = "x")
  for (i in 1:3) job_tick(job, i / 10)
  expect_length(read_jsonl(file.path(dir, "events")), 0) # batched within the job
  job_tick(job)
  expect_length(read_jsonl(file.path(dir, "events")), 5) # a full batch went at once
  job_finish(job) # a top-level job's end sends its batch
  expect_length(read_jsonl(file.path(dir, "events")), 6)
  wafermon_close(2)
})

test_that("a forked child does not send its parent's batch", {
  skip_on_os("windows")
  clean_env()
  dir <- fresh_dir()
  client <- direct_client(dir)
  job <- job_start(app = "x", business_key = "parent")
  child <- parallel::mcparallel({
    j <- job_start(app = "x", business_key = "child")
    job_finish(j)
    wafermon_flush(5)
  })
  expect_true(isTRUE(parallel::mccollect(child)[[1]]))
  job_finish(job)
  wafermon_close(2)
  events <- read_jsonl(file.path(dir, "events"))
  keys <- vapply(events, function(e) e$entity$business_key, "")
  expect_equal(sort(keys), c("child", "child", "parent", "parent"))
  ids <- vapply(events, `[[`, "", "event_id")
  expect_equal(length(unique(ids)), 4L)
})

test_that("a script that never closes its client still writes its events at exit", {
  skip_if_not_installed("processx")
  clean_env()
  dir <- fresh_dir()
  lib <- dirname(getNamespaceInfo("wafermon", "path"))
  script <- sprintf(
    paste(
      "library(wafermon)",
      "wafermon_init(list(mode = 'direct', direct_url = 'file://%s/events', site_id = 'fab1', spool_dir = '%s/spool', flush_interval = '1h'))",
      "job <- job_start(app = 'x', business_key = 'no-close')",
      "job_tick(job, 0.5)",
      sep = "\n"
    ),
    dir, dir
  )
  file <- file.path(dir, "script.R")
  writeLines(script, file)
  out <- processx::run(file.path(R.home("bin"), "Rscript"), file,
    env = c("current", R_LIBS = paste(c(lib, .libPaths()), collapse = ":")), error_on_status = FALSE
  )
  expect_equal(out$status, 0L, info = out$stderr)
  events <- read_jsonl(file.path(dir, "events"))
  expect_equal(vapply(events, `[[`, "", "kind"), c("started", "progress"))
})

test_that("a new default client closes the previous one, which delivers what it held", {
  clean_env()
  dir <- fresh_dir()
  first <- direct_client(dir)
  job <- job_start(app = "x", business_key = "first")
  job_tick(job, 0.1)
  second <- direct_client(dir)
  expect_true(first$closed)
  expect_identical(wafermon_client(), second)
  expect_length(read_jsonl(file.path(dir, "events")), 2)
  expect_error(wafermon_flush(first), "timeout: expected a number", class = "wafermon_usage_error")
  expect_error(wafermon_flush(1, client = "x"), "client: expected a wafermon_client", class = "wafermon_usage_error")
  wafermon_close(1)
})

test_that("return() out of the block finishes the job; an interrupt fails it", {
  clean_env()
  dir <- fresh_dir()
  direct_client(dir)
  early <- function() {
    with_monitored("LOT-R", return("early"))
    "late"
  }
  expect_equal(early(), "early")
  interrupted <- tryCatch(
    with_monitored("LOT-I", signalCondition(structure(class = c("interrupt", "condition"), list(message = "", call = NULL)))),
    interrupt = function(i) "caught"
  )
  expect_equal(interrupted, "caught")
  wafermon_close(2)
  events <- read_jsonl(file.path(dir, "events"))
  kinds <- vapply(events, function(e) paste(e$entity$business_key, e$kind), "")
  expect_equal(kinds, c("LOT-R started", "LOT-R finished", "LOT-I started", "LOT-I failed"))
  expect_equal(events[[4]]$error$type, "interrupt")
})
