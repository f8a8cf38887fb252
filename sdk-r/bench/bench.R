# R SDK benchmark (run by bench/sdk_r_bench.py): prints one JSON object on stdout.
#
#   WAFERMON_SIDECAR_URL=... Rscript sdk-r/bench/bench.R CALLS ROUNDS THROUGHPUT_EVENTS
#
# Caller cost per event of job_tick() and emit_event() (sidecar mode, a real sidecar; R has
# one thread, so the amortised POSTs of full batches are part of the caller's cost) and of
# job_tick() in direct mode, each as a ratio to the baseline measured in the same run:
# appending the same JSON line to a local file through an open connection. Throughput:
# events/s from the first emit until wafermon_flush() returned TRUE (the sidecar stored all).
suppressPackageStartupMessages(library(wafermon))
args <- commandArgs(TRUE)
url <- Sys.getenv("WAFERMON_SIDECAR_URL")
work <- tempfile("wafermon-bench-r-")
dir.create(work)
calls <- as.integer(args[1])
rounds <- as.integer(args[2])
throughput_events <- as.integer(args[3])

per_call_ns <- function(f) {
  f(50L) # warm up
  gc(verbose = FALSE)
  start <- proc.time()[["elapsed"]]
  f(calls)
  (proc.time()[["elapsed"]] - start) / calls * 1e9
}

median_of <- function(f) stats::median(vapply(seq_len(rounds), function(i) per_call_ns(f), 0))

sidecar <- function(batch = 500L) {
  wafermon_init(list(
    sidecar_url = url, site_id = "fab1", spool_dir = file.path(work, "spool"),
    batch_size = batch, queue_size = 100000, flush_interval = "1s"
  ))
}

# A line as the SDK writes it, for the baseline.
direct <- wafermon_init(list(
  mode = "direct", direct_url = paste0("file://", work, "/direct"), site_id = "fab1",
  spool_dir = file.path(work, "spool-direct"), flush_interval = "1s"
))
job <- job_start(app = list(name = "wafer-process", version = "2.1.0"), business_key = "LOT-12345", metadata = list(tool = "etch-07", recipe = "POLY-ETCH-3"))
job_tick(job, 0.5)
invisible(wafermon_flush(10))
line <- utils::tail(readLines(list.files(file.path(work, "direct"), "events.jsonl$", recursive = TRUE, full.names = TRUE)[1]), 1)

baseline_file <- file.path(work, "baseline.jsonl")
baseline <- median_of(function(n) {
  con <- file(baseline_file, open = "ab")
  for (i in seq_len(n)) writeLines(line, con)
  close(con)
})

direct_tick <- median_of(function(n) {
  for (i in seq_len(n)) job_tick(job, 0.5)
  wafermon_flush(30)
})
wafermon_close(10)

sidecar()
job <- job_start(app = list(name = "wafer-process", version = "2.1.0"), business_key = "LOT-12345", metadata = list(tool = "etch-07", recipe = "POLY-ETCH-3"))
sidecar_tick <- median_of(function(n) {
  for (i in seq_len(n)) job_tick(job, 0.5)
  stopifnot(wafermon_flush(60))
})
wire <- jsonlite::fromJSON(line, simplifyVector = FALSE)
emit <- median_of(function(n) {
  for (i in seq_len(n)) {
    wire$event_id <- wafermon_uuid()
    emit_event(wire)
  }
  stopifnot(wafermon_flush(60))
})

start <- proc.time()[["elapsed"]]
for (i in seq_len(throughput_events)) job_tick(job, i / throughput_events)
delivered <- wafermon_flush(120)
seconds <- proc.time()[["elapsed"]] - start
stats <- wafermon_stats()
wafermon_close(10)

ratio <- function(x) round(x / baseline, 2)
cat(jsonlite::toJSON(list(
  caller_cost = list(
    baseline = "writeLines() of the same JSON line to a local file through an open connection",
    baseline_ns = round(baseline),
    job_tick_sidecar_ns = round(sidecar_tick), job_tick_sidecar_ratio = ratio(sidecar_tick),
    emit_event_sidecar_ns = round(emit), emit_event_sidecar_ratio = ratio(emit),
    job_tick_direct_ns = round(direct_tick), job_tick_direct_ratio = ratio(direct_tick),
    calls = calls, rounds = rounds, method = "median of rounds; per-call time includes the amortised batch delivery"
  ),
  throughput = list(
    events = throughput_events, delivered = delivered, seconds = round(seconds, 3),
    events_per_s = round(throughput_events / seconds), requests = stats$requests,
    baseline_events_per_s = round(1e9 / baseline),
    ratio_to_baseline = round((throughput_events / seconds) / (1e9 / baseline), 3)
  )
), auto_unbox = TRUE, pretty = TRUE), "\n")
unlink(work, recursive = TRUE)
