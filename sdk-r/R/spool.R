# The disk spool: what could not be delivered waits here, survives the process, and is
# replayed oldest first. Layout as the C SDK's: {spool_dir}/{sidecar|direct}/
# {unix_ns}-{pid}-{seq}-{random}.ndjson, each file one whole batch (written under a temporary
# name and renamed), never changed in place except to drop what was delivered. Folders 0700,
# files 0600. One process at a time replays a folder: it holds the lock folder `.lock`
# (made with mkdir, which is atomic), whose `owner` file names its pid; a dead owner's lock
# is taken over.

.spool_prepare <- function(path) {
  if (!dir.exists(path)) dir.create(path, recursive = TRUE, mode = "0700", showWarnings = FALSE)
  if (!dir.exists(path)) .config_error(paste0("WAFERMON_SPOOL_DIR: cannot create ", path))
  Sys.chmod(path, "0700", use_umask = FALSE)
  path
}

.spool_files <- function(ctx) {
  sort(list.files(ctx$spool_path, pattern = "^[0-9]+-[0-9]+-[0-9]+-[0-9a-f]+\\.ndjson$", full.names = TRUE))
}

.spool_bytes <- function(ctx) {
  files <- .spool_files(ctx)
  if (length(files) == 0L) 0 else sum(file.size(files), na.rm = TRUE)
}

# Write `text` to `path` atomically with mode 0600.
.write_private <- function(path, text) {
  tmp <- paste0(path, ".tmp")
  old <- Sys.umask("077")
  on.exit(Sys.umask(old))
  con <- file(tmp, open = "wb")
  writeBin(charToRaw(text), con)
  close(con)
  Sys.chmod(tmp, "0600", use_umask = FALSE)
  if (!file.rename(tmp, path)) stop("cannot rename ", tmp)
  invisible(path)
}

# Append a batch to the spool. Returns TRUE, or FALSE when the cap or the disk refused it
# (the events are then counted as dropped: nothing else can keep them).
.spool_write <- function(ctx, lines) {
  if (length(lines) == 0L) return(TRUE)
  text <- paste0(paste(lines, collapse = "\n"), "\n")
  if (.spool_bytes(ctx) + nchar(text, type = "bytes") > ctx$settings$spool_max_bytes) {
    ctx$counters$dropped <- ctx$counters$dropped + length(lines)
    .note_error(ctx, sprintf("spool %s is full: %d events dropped", ctx$spool_path, length(lines)))
    return(FALSE)
  }
  ctx$spool_seq <- ctx$spool_seq + 1L
  name <- sprintf(
    "%s-%d-%06d-%s.ndjson", formatC(.now() * 1e9, format = "f", digits = 0, width = 19, flag = "0"),
    Sys.getpid(), ctx$spool_seq, paste(as.character(.random_bytes(4L)), collapse = "")
  )
  ok <- tryCatch(
    {
      .write_private(file.path(ctx$spool_path, name), text)
      TRUE
    },
    error = function(e) {
      .note_error(ctx, paste0("cannot write the spool: ", conditionMessage(e)))
      FALSE
    }
  )
  if (ok) {
    ctx$counters$spooled <- ctx$counters$spooled + length(lines)
  } else {
    ctx$counters$dropped <- ctx$counters$dropped + length(lines)
  }
  ok
}

.pid_alive <- function(pid) {
  !is.na(pid) && pid > 0 && isTRUE(suppressWarnings(tools::pskill(pid, 0L)))
}

.lock_path <- function(ctx) file.path(ctx$spool_path, ".lock")

.lock_owner <- function(ctx) {
  suppressWarnings(as.integer(tryCatch(
    readLines(file.path(.lock_path(ctx), "owner"), n = 1L, warn = FALSE),
    error = function(e) NA
  )))
}

# TRUE if this process now holds the replay lock (or already did).
.lock_take <- function(ctx) {
  lock <- .lock_path(ctx)
  for (try in 1:2) {
    if (dir.create(lock, mode = "0700", showWarnings = FALSE)) {
      writeLines(as.character(Sys.getpid()), file.path(lock, "owner"))
      return(TRUE)
    }
    owner <- .lock_owner(ctx)
    if (length(owner) == 1L && !is.na(owner) && owner == Sys.getpid()) return(TRUE)
    if (length(owner) == 1L && .pid_alive(owner)) return(FALSE)
    # No owner yet (being written) or a dead one: give a writer a moment, then take over.
    if (length(owner) == 0L || is.na(owner)) Sys.sleep(0.05)
    owner2 <- .lock_owner(ctx)
    if (length(owner2) == 1L && .pid_alive(owner2)) return(FALSE)
    unlink(lock, recursive = TRUE)
  }
  FALSE
}

.lock_release <- function(ctx) {
  owner <- .lock_owner(ctx)
  if (length(owner) == 1L && !is.na(owner) && owner == Sys.getpid()) unlink(.lock_path(ctx), recursive = TRUE)
}

.replayer_alive <- function(ctx) {
  owner <- .lock_owner(ctx)
  length(owner) == 1L && !is.na(owner) && owner != Sys.getpid() && .pid_alive(owner)
}

# Replay the spool oldest first, each file with `.send_retrying` until `deadline`
# (retrying = FALSE: one attempt). "empty": all delivered; "busy": another live process
# replays it; "failed": the destination did not take a file (it stays).
.spool_replay <- function(ctx, deadline, retrying) {
  files <- .spool_files(ctx)
  if (length(files) == 0L) return("empty")
  owner <- .lock_owner(ctx)
  held <- length(owner) == 1L && !is.na(owner) && owner == Sys.getpid()
  if (!.lock_take(ctx)) return("busy")
  if (!held) on.exit(.lock_release(ctx))
  repeat {
    files <- .spool_files(ctx)
    if (length(files) == 0L) return("empty")
    for (path in files) {
      lines <- readLines(path, warn = FALSE, encoding = "UTF-8")
      lines <- lines[nzchar(lines)]
      rest <- if (length(lines) == 0L) {
        character()
      } else if (retrying) {
        .send_retrying(ctx, lines, deadline)
      } else if (.not_before(ctx) > .now()) {
        lines
      } else {
        .send_once(ctx, lines)$rest
      }
      if (length(rest) == 0L) {
        unlink(path)
        ctx$counters$replayed <- ctx$counters$replayed + length(lines)
        next
      }
      if (length(rest) < length(lines)) {
        .write_private(path, paste0(paste(rest, collapse = "\n"), "\n"))
        ctx$counters$replayed <- ctx$counters$replayed + length(lines) - length(rest)
      }
      if (!retrying && .not_before(ctx) <= .now()) {
        .set_not_before(ctx, .now() + .backoff(ctx$settings, 1L), FALSE)
      }
      return("failed")
    }
  }
}

# Start the replayer process unless one runs: an Rscript that replays this spool folder every
# WAFERMON_REPLAY_INTERVAL until it is empty (at most `wafermon.replayer_lifetime` seconds,
# default 600), so spooled events arrive by themselves with no event loop in the caller.
# Settings reach it through its environment, never its command line (the token).
.ensure_replayer <- function(ctx) {
  if (isFALSE(getOption("wafermon.replayer", TRUE)) || .Platform$OS.type != "unix") return(invisible(FALSE))
  if (length(.spool_files(ctx)) == 0L || .replayer_alive(ctx)) return(invisible(FALSE))
  if (.now() - ctx$replayer_started < ctx$settings$replay_interval) return(invisible(FALSE))
  ctx$replayer_started <- .now()
  s <- ctx$settings
  env <- c(
    WAFERMON_MODE = s$mode, WAFERMON_SIDECAR_URL = s$sidecar_url,
    WAFERMON_TOKEN = if (is.null(s$token)) "" else s$token$value,
    WAFERMON_DIRECT_URL = s$direct_url %||% "", WAFERMON_SPOOL_DIR = s$spool_dir,
    WAFERMON_SPOOL_MAX_BYTES = format(s$spool_max_bytes, scientific = FALSE),
    WAFERMON_TIMEOUT = format(s$timeout), WAFERMON_REPLAY_INTERVAL = format(s$replay_interval),
    WAFERMON_RETRY_BASE_DELAY = format(s$retry_base_delay),
    WAFERMON_RETRY_MAX_DELAY = format(s$retry_max_delay),
    WAFERMON_VERIFY_TLS = tolower(as.character(s$verify_tls)), WAFERMON_SDK_CONFIG = "",
    WAFERMON_R_REPLAYER_LIFETIME = format(getOption("wafermon.replayer_lifetime", 600)),
    R_LIBS = paste(unique(c(dirname(getNamespaceInfo("wafermon", "path")), .libPaths())), collapse = ":")
  )
  old <- Sys.getenv(names(env), unset = NA)
  on.exit({
    for (n in names(old)) if (is.na(old[[n]])) Sys.unsetenv(n) else do.call(Sys.setenv, as.list(old[n]))
  })
  do.call(Sys.setenv, as.list(env))
  log <- file.path(ctx$spool_path, "replayer.log")
  rscript <- file.path(R.home("bin"), "Rscript")
  ok <- tryCatch(
    {
      system2(rscript, c("--no-save", "--no-restore", "-e", shQuote("wafermon:::.replayer_main()")),
        stdout = log, stderr = log, stdin = "/dev/null", wait = FALSE
      )
      TRUE
    },
    error = function(e) {
      .note_error(ctx, paste0("cannot start the replayer: ", conditionMessage(e)))
      FALSE
    }
  )
  ctx$counters$replayers <- ctx$counters$replayers + as.integer(ok)
  invisible(ok)
}

# The replayer process's main loop (started by .ensure_replayer; not for direct use).
.replayer_main <- function() {
  settings <- wafermon_settings()
  ctx <- .new_context(settings)
  lifetime <- as.numeric(Sys.getenv("WAFERMON_R_REPLAYER_LIFETIME", "600"))
  end <- .now() + lifetime
  if (!.lock_take(ctx)) quit(save = "no", status = 0)
  cat(format(Sys.time()), "replayer", Sys.getpid(), "started\n")
  repeat {
    if (length(.spool_files(ctx)) == 0L) {
      .lock_release(ctx)
      Sys.sleep(0.05) # a writer that saw the lock held may just have added a file
      if (length(.spool_files(ctx)) == 0L || !.lock_take(ctx)) break
    }
    result <- .spool_replay(ctx, deadline = .now(), retrying = FALSE)
    if (result == "failed") {
      writeLines(format(.now(), nsmall = 3), file.path(ctx$spool_path, ".failed"))
    }
    if (.now() > end) break
    if (result != "empty") Sys.sleep(max(settings$replay_interval, .not_before(ctx) - .now()))
  }
  .lock_release(ctx)
  cat(format(Sys.time()), "replayer", Sys.getpid(), "done:", ctx$counters$replayed, "replayed\n")
  quit(save = "no", status = 0)
}
