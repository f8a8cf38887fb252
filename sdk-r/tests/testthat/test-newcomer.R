# Issue #21: subjobs inherit the lot's business key; console mode prints each event as it is
# sent. Direct mode to the filesystem backend's file tree, read back.

newcomer_client <- function(dir, ...) {
  wafermon_init(list(
    mode = "direct", direct_url = paste0("file://", dir, "/events"), site_id = "fab1",
    spool_dir = file.path(dir, "spool"), flush_interval = "10s", ...
  ))
}

test_that("a subjob without its own key inherits its enclosing parent's; its own key wins", {
  clean_env()
  dir <- fresh_dir()
  client <- newcomer_client(dir)
  ids <- list()
  with_monitored("LOT-7", app = "yield-spc", {
    with_monitored("W01", ids$w1 <- job_id(wafermon_current()))
    lot <- wafermon_current()
    w2 <- job_start(entity_type = "subjob", parent = lot, sub_key = "W02")
    ids$w2 <- job_id(w2)
    job_finish(w2)
    with_monitored("W05", with_monitored("die-1", ids$grand <- job_id(wafermon_current())))
    own <- job_start(entity_type = "subjob", business_key = "OWN", sub_key = "W03")
    ids$own <- job_id(own)
    job_finish(own)
  })
  # By handle, outside the parent's block: the parent's key too (the conformance scenarios
  # expect it of every SDK).
  lot8 <- job_start(app = "yield-spc", business_key = "LOT-8")
  by_handle <- job_start(entity_type = "subjob", parent = lot8, sub_key = "W06")
  ids$by_handle <- job_id(by_handle)
  job_finish(by_handle)
  job_finish(lot8)
  keyless <- job_start(app = "yield-spc")
  ids$keyless <- job_id(keyless)
  w4 <- job_start(entity_type = "subjob", parent = keyless, sub_key = "W04")
  ids$w4 <- job_id(w4)
  job_finish(w4)
  job_finish(keyless)
  expect_true(wafermon_close(5, client = client))
  events <- read_jsonl(file.path(dir, "events"))
  key_of <- function(id) {
    keys <- unique(lapply(Filter(function(e) identical(e$entity$id, id), events), function(e) e$entity$business_key))
    expect_length(keys, 1L) # every event of the entity carries the same key
    keys[[1]]
  }
  expect_equal(key_of(ids$w1), "LOT-7")
  expect_equal(key_of(ids$w2), "LOT-7")
  expect_equal(key_of(ids$grand), "LOT-7")
  expect_equal(key_of(ids$own), "OWN")
  expect_equal(key_of(ids$by_handle), "LOT-8")
  expect_null(key_of(ids$keyless))
  expect_null(key_of(ids$w4))
})

test_that("console mode prints each event's JSON to stderr as it is sent, exactly as stored", {
  clean_env(WAFERMON_CONSOLE = "1")
  dir <- fresh_dir()
  client <- newcomer_client(dir)
  expect_true(client$settings$console)
  printed <- capture.output(type = "message", {
    with_monitored("LOT-9", app = "yield-spc", tick(0.5))
    expect_true(wafermon_close(5, client = client))
  })
  sent <- grep("^wafermon-sdk-r: send ", printed, value = TRUE)
  events <- lapply(sub("^wafermon-sdk-r: send ", "", sent), jsonlite::fromJSON, simplifyVector = FALSE)
  expect_equal(vapply(events, `[[`, "", "kind"), c("started", "progress", "finished"))
  stored <- read_jsonl(file.path(dir, "events"))
  expect_equal(events, stored) # exactly what was sent, each once
})

test_that("console mode is off by default, set by file or argument, and checked", {
  clean_env()
  dir <- fresh_dir()
  client <- newcomer_client(dir)
  expect_false(client$settings$console)
  printed <- capture.output(type = "message", {
    with_monitored("LOT-10", app = "yield-spc", NULL)
    wafermon_close(5, client = client)
  })
  expect_false(any(grepl("wafermon-sdk-r: send", printed, fixed = TRUE)))
  yaml_file <- file.path(dir, "sdk.yaml")
  writeLines("console: true", yaml_file)
  expect_true(wafermon_settings(yaml_file)$console)
  toml_file <- file.path(dir, "sdk.toml")
  writeLines("[wafermon_sdk]\nconsole = true", toml_file)
  expect_true(wafermon_settings(toml_file)$console)
  expect_true(wafermon_settings(console = TRUE)$console)
  expect_error(wafermon_settings(console = "maybe"), "console: expected true or false, got 'maybe'",
    class = "wafermon_config_error"
  )
  clean_env(WAFERMON_CONSOLE = "loud")
  expect_error(wafermon_settings(), "WAFERMON_CONSOLE: expected true or false", class = "wafermon_config_error")
})
