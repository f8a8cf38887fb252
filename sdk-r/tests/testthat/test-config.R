test_that("defaults are the shared ones", {
  clean_env()
  s <- wafermon_settings()
  expect_equal(s$mode, "sidecar")
  expect_equal(s$sidecar_url, "http://127.0.0.1:17000")
  expect_equal(s$batch_size, 500L)
  expect_equal(s$queue_size, 10000L)
  expect_equal(s$flush_interval, 0.2)
  expect_equal(s$timeout, 10)
  expect_equal(s$max_retries, 5L)
  expect_equal(s$retry_base_delay, 0.2)
  expect_equal(s$retry_max_delay, 30)
  expect_equal(s$replay_interval, 1)
  expect_equal(s$spool_max_bytes, 1024^3)
  expect_null(s$token)
})

test_that("environment variables are read and parsed", {
  clean_env(
    WAFERMON_SIDECAR_URL = "https://sidecar.fab1:17443/", WAFERMON_FLUSH_INTERVAL = "50ms",
    WAFERMON_TIMEOUT = "2m", WAFERMON_SPOOL_MAX_BYTES = "64MiB", WAFERMON_ENABLE_RETRIES = "no",
    WAFERMON_SITE_ID = "fab-1.a", WAFERMON_TOKEN = "s3cret", WAFERMON_BATCH_SIZE = " "
  )
  s <- wafermon_settings()
  expect_equal(s$sidecar_url, "https://sidecar.fab1:17443")
  expect_equal(s$flush_interval, 0.05)
  expect_equal(s$timeout, 120)
  expect_equal(s$spool_max_bytes, 64 * 1024^2)
  expect_false(s$enable_retries)
  expect_equal(s$site_id, "fab-1.a")
  expect_equal(s$batch_size, 500L) # blank counts as unset
  expect_equal(s$token$value, "s3cret")
  expect_false(any(grepl("s3cret", capture.output(print(s)))))
  expect_false(grepl("s3cret", format(s$token)))
})

test_that("a bad value names the variable and the value, every fault at once", {
  clean_env(WAFERMON_MODE = "sidcar", WAFERMON_QUEUE_SIZE = "0", WAFERMON_TIMEOUT = "soon")
  err <- tryCatch(wafermon_settings(), wafermon_config_error = function(e) conditionMessage(e))
  expect_match(err, "WAFERMON_MODE: must be one of sidecar, direct, got 'sidcar'", fixed = TRUE)
  expect_match(err, "WAFERMON_QUEUE_SIZE: must be at least 1, got 0", fixed = TRUE)
  expect_match(err, "WAFERMON_TIMEOUT: expected a duration such as 30, 500ms, 30s, 5m, 1h or 2d, got 'soon'", fixed = TRUE)
})

test_that("each variable's faults are refused", {
  cases <- list(
    WAFERMON_SIDECAR_URL = "127.0.0.1:17000", WAFERMON_SIDECAR_URL = "ftp://127.0.0.1:17000",
    WAFERMON_SITE_ID = "fab 1", WAFERMON_BATCH_SIZE = "-5", WAFERMON_MAX_RETRIES = "many",
    WAFERMON_FLUSH_INTERVAL = "5 fortnights", WAFERMON_DIRECT_URL = "ftp://files/events",
    WAFERMON_SPOOL_MAX_BYTES = "1KiB", WAFERMON_VERIFY_TLS = "maybe"
  )
  for (i in seq_along(cases)) {
    env <- cases[i]
    clean_env(unlist(env))
    expect_error(wafermon_settings(), paste0("^", names(env), ": "), class = "wafermon_config_error")
  }
  clean_env(WAFERMON_MODE = "direct")
  expect_error(wafermon_settings(), "WAFERMON_MODE: 'direct' needs a direct target: WAFERMON_DIRECT_URL",
    class = "wafermon_config_error"
  )
})

test_that("a YAML or TOML file is read, under wafermon_sdk or at the top; env and arguments win", {
  clean_env(WAFERMON_BATCH_SIZE = "7")
  dir <- fresh_dir()
  yaml_file <- file.path(dir, "sdk.yaml")
  writeLines(c("wafermon_sdk:", "  site_id: fab9", "  batch_size: 100", "  flush_interval: 1s"), yaml_file)
  s <- wafermon_settings(yaml_file, flush_interval = "20ms")
  expect_equal(s$site_id, "fab9")
  expect_equal(s$batch_size, 7L)
  expect_equal(s$flush_interval, 0.02)
  toml_file <- file.path(dir, "sdk.toml")
  writeLines(c("# comment", "[wafermon_sdk]", "site_id = \"fab8\" # trailing", "max_retries = 3", "verify_tls = false"), toml_file)
  s <- wafermon_settings(toml_file)
  expect_equal(s$site_id, "fab8")
  expect_equal(s$max_retries, 3L)
  expect_false(s$verify_tls)
  expect_equal(wafermon_settings(list(batch_size = 9))$batch_size, 9L) # a list wins over the environment
  withr::local_envvar(WAFERMON_SDK_CONFIG = toml_file)
  expect_equal(wafermon_settings()$site_id, "fab8")
  writeLines("queue_size: lots", yaml_file)
  expect_error(wafermon_settings(yaml_file), "sdk.yaml: queue_size: expected an integer, got 'lots'",
    fixed = TRUE, class = "wafermon_config_error"
  )
  writeLines("colour: blue", yaml_file)
  expect_error(wafermon_settings(yaml_file), "colour: unknown setting", class = "wafermon_config_error")
  expect_error(wafermon_settings(file.path(dir, "none.yaml")), "cannot read settings file")
  s <- wafermon_settings(list(queue_size = 1e5, spool_max_bytes = 2^30, timeout = 1.5, flush_interval = 1e-1))
  expect_equal(c(s$queue_size, s$spool_max_bytes, s$timeout, s$flush_interval), c(100000, 2^30, 1.5, 0.1))
  expect_error(wafermon_settings(list(mode = "direct", direct_url = "file:///x", spool_dir = "")), "spool_dir: must not be empty")
})
