# End to end against a REAL `wafermon sidecar` process (the Python host) whose backend is the
# filesystem backend: what the R SDK sends is validated by the sidecar, stored, and read back
# here from the files the backend wrote. Then the sidecar is stopped and restarted on the same
# port: spooled events arrive by themselves (the replayer process), or from the next client.

sidecar_client <- function(sc, dir, ...) {
  wafermon_init(list(
    sidecar_url = sc$url, site_id = "fab1", spool_dir = file.path(dir, "spool"),
    flush_interval = "50ms", replay_interval = "200ms", max_retries = 1, retry_base_delay = "10ms",
    timeout = "5s", ...
  ))
}

test_that("a monitored job reaches the sidecar's backend with every field", {
  clean_env()
  dir <- fresh_dir()
  sc <- start_sidecar(dir)
  on.exit(stop_sidecar(sc), add = TRUE)
  client <- sidecar_client(sc, dir)
  job_ids <- list()
  with_monitored("LOT-12345", app = list(name = "wafer-process", version = "2.1.0", app_id = "7c9e6679-7425-40de-944b-e07fc1f90ae7"), metadata = list(tool = "etch-07"), {
    job_ids$job <- job_id(wafermon_current())
    with_monitored("wafer-01", {
      tick(0.5, metadata = list(chamber = "B"))
      x <- 0
      for (i in 1:300000) x <- x + i
    })
    try(with_monitored("wafer-02", stop(errorCondition("pressure out of range \u00b5", class = "EtchError"))), silent = TRUE)
  })
  wire <- list(
    schema_version = 1, event_id = "3f0c1e8a-2b4d-4c6e-8f10-a1b2c3d4e5f6", kind = "started",
    time = "2026-11-28T09:30:00Z", site_id = "fab1", app = list(name = "etch"), entity = list(type = "job", id = "wire-1")
  )
  refused <- modifyList(wire, list(event_id = "4f0c1e8a-2b4d-4c6e-8f10-a1b2c3d4e5f6", entity = list(type = "subjob", id = "no-parent")))
  expect_equal(emit_batch(list(wire, refused)), 2L) # the sidecar refuses the subjob without parent
  expect_true(wafermon_flush(10))
  stats <- wafermon_stats()
  expect_equal(stats$queued, 9)
  expect_equal(stats$sent, 8)
  expect_equal(stats$rejected, 1)
  expect_equal(stats$spooled, 0)
  expect_true(wafermon_close(5))
  events <- wait_for_events(sc$events, 8)
  expect_length(events, 8)
  started <- of(events, job_ids$job, "started")[[1]]
  expect_equal(started$app$app_id, "7c9e6679-7425-40de-944b-e07fc1f90ae7")
  expect_equal(started$metadata$tool, "etch-07")
  expect_equal(started$source$pid, Sys.getpid())
  failed <- Filter(function(e) e$kind == "failed", events)[[1]]
  expect_equal(failed$error$type, "EtchError")
  expect_equal(failed$error$message, "pressure out of range \u00b5")
  expect_equal(failed$entity$parent_id, job_ids$job)
  finished <- Filter(function(e) e$kind == "finished" && e$entity$type == "subjob", events)[[1]]
  expect_true(finished$metrics$cpu_user_s > 0)
  expect_length(of(events, "wire-1", "started"), 1)
})

test_that("during an outage events are spooled and delivered by themselves when it ends", {
  clean_env()
  dir <- fresh_dir()
  sc <- start_sidecar(dir)
  stop_sidecar(sc)
  client <- sidecar_client(sc, dir)
  with_monitored("LOT-OUTAGE", app = "offline", tick(0.5))
  expect_false(wafermon_flush(3))
  expect_equal(wafermon_stats()$spooled, 3)
  spool <- file.path(dir, "spool", "sidecar")
  expect_equal(as.character(file.mode(spool)), "700")
  expect_true(all(as.character(file.mode(list.files(spool, pattern = "ndjson$", full.names = TRUE))) == "600"))
  Sys.sleep(0.5)
  sc2 <- start_sidecar(dir, port = sc$port)
  on.exit(stop_sidecar(sc2), add = TRUE)
  # No SDK call from here on: the replayer process delivers the spool.
  events <- wait_for_events(sc2$events, 3, seconds = 30)
  expect_length(events, 3)
  expect_equal(vapply(events, `[[`, "", "kind"), c("started", "progress", "finished"))
  deadline <- Sys.time() + 10
  while (length(list.files(spool, pattern = "ndjson$")) && Sys.time() < deadline) Sys.sleep(0.1)
  expect_length(list.files(spool, pattern = "ndjson$"), 0)
  expect_true(wafermon_close(5))
  Sys.sleep(0.5)
  expect_length(read_jsonl(sc2$events), 3) # and none twice
})

test_that("a spool left by an earlier client is replayed by the next one when it starts", {
  clean_env()
  withr::local_options(wafermon.replayer = FALSE)
  dir <- fresh_dir()
  sc <- start_sidecar(dir)
  stop_sidecar(sc)
  first <- sidecar_client(sc, dir)
  with_monitored("LOT-LEFT", app = "offline", NULL)
  expect_false(wafermon_close(2))
  expect_length(list.files(file.path(dir, "spool", "sidecar"), pattern = "ndjson$"), 1)
  sc2 <- start_sidecar(dir, port = sc$port)
  on.exit(stop_sidecar(sc2), add = TRUE)
  second <- sidecar_client(sc2, dir)
  expect_equal(wafermon_stats(second)$replayed, 2)
  expect_true(wafermon_close(5))
  events <- wait_for_events(sc2$events, 2)
  expect_equal(vapply(events, function(e) e$entity$business_key, ""), c("LOT-LEFT", "LOT-LEFT"))
})
