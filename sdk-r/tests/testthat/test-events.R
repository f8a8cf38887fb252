test_that("event ids are lower-case UUID v4 and unique", {
  ids <- replicate(2000, wafermon_uuid())
  expect_true(all(grepl("^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$", ids)))
  expect_equal(length(unique(ids)), 2000L)
})

test_that("times are RFC 3339 UTC with microseconds", {
  t <- wafermon:::.now_rfc3339(1764316800.25)
  expect_equal(t, "2025-11-28T08:00:00.250000Z")
  expect_match(wafermon:::.now_rfc3339(), "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{6}Z$")
})

test_that("numbers survive encoding exactly", {
  json <- as.character(wafermon:::.to_json(list(a = 9007199254740991, b = 0.1 + 0.2, c = 0.125, d = c(1, 2.5), e = 1L)))
  back <- jsonlite::fromJSON(json)
  expect_identical(back$b, 0.1 + 0.2)
  expect_match(json, "\"a\":9007199254740991", fixed = TRUE)
  expect_match(json, "\"c\":0.125", fixed = TRUE)
  expect_match(json, "\"d\":[1,2.5]", fixed = TRUE)
})

test_that("metadata at the 16384-byte cap is kept, one byte more is replaced", {
  client <- new.env()
  client$counters <- list(metadata_truncated = 0)
  overhead <- nchar('{"blob":""}')
  at_cap <- list(blob = strrep("x", 16384 - overhead))
  expect_identical(wafermon:::.capped_metadata(at_cap, client), at_cap)
  over <- list(blob = strrep("x", 16385 - overhead))
  capped <- wafermon:::.capped_metadata(over, client)
  expect_match(capped$wafermon_sdk_truncated, "metadata of 16385 bytes was above the 16384-byte cap")
  expect_equal(client$counters$metadata_truncated, 1)
})

test_that("the JSON writer agrees with jsonlite on what events hold", {
  value <- list(
    s = "plain", q = "quote \" backslash \\ newline \n tab \t", u = "Zo\u00eb \u30a8\u30c3\u30c1 \U0001F9EA",
    n = 0.125, big = 9007199254740991, i = 42L, neg = -42, e = 1e-07, t = TRUE, f = FALSE,
    na = NA, nul = NULL, v = c(1, 2.5), sv = c("a", "b"), empty = setNames(list(), character()), arr = list(),
    nested = list(list(gas = "CF\u2084"), list(TRUE, FALSE), 1L), inf = Inf, date = as.Date("2026-11-28")
  )
  ours <- wafermon:::.to_json(value)
  theirs <- as.character(jsonlite::toJSON(value, auto_unbox = TRUE, null = "null", na = "null", digits = NA))
  expect_equal(jsonlite::fromJSON(ours, simplifyVector = FALSE), jsonlite::fromJSON(theirs, simplifyVector = FALSE))
  expect_match(ours, '"empty":{},"arr":[]', fixed = TRUE)
  expect_match(ours, '"na":null,"nul":null', fixed = TRUE)
  expect_match(ours, '"date":"2026-11-28"', fixed = TRUE)
  expect_match(ours, '"inf":null', fixed = TRUE)
})
