# Settings: defaults, then a YAML/TOML file, then WAFERMON_* variables, then arguments.
# The names, variables and formats are the ones every wafermon SDK reads
# (conformance/PROTOCOL.md, docs/sdk-python.md), so one sdk.yaml serves all of them.

.setting_names <- c(
  "mode", "sidecar_url", "token", "site_id", "direct_url", "spool_dir",
  "spool_max_bytes", "queue_size", "batch_size", "flush_interval", "timeout",
  "max_retries", "enable_retries", "retry_base_delay", "retry_max_delay",
  "replay_interval", "flush_timeout", "verify_tls", "console"
)

.site_id_pattern <- "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"

.default_spool_dir <- function() {
  cache <- Sys.getenv("XDG_CACHE_HOME", "")
  if (!nzchar(cache)) cache <- file.path(path.expand("~"), ".cache")
  file.path(cache, "wafermon-sdk-r", "spool")
}

.defaults <- function() {
  list(
    mode = "sidecar", sidecar_url = "http://127.0.0.1:17000", token = NULL,
    site_id = NULL, direct_url = NULL, spool_dir = .default_spool_dir(),
    spool_max_bytes = 1024^3, queue_size = 10000L, batch_size = 500L,
    flush_interval = 0.2, timeout = 10, max_retries = 5L, enable_retries = TRUE,
    retry_base_delay = 0.2, retry_max_delay = 30, replay_interval = 1,
    flush_timeout = 10, verify_tls = TRUE, console = FALSE
  )
}

# Numbers given from R (a list or arguments) as text without scientific notation: 1e5 is 100000.
.as_text <- function(value) {
  if (is.numeric(value) && length(value) == 1L && is.finite(value)) {
    return(format(value, scientific = FALSE, trim = TRUE, digits = 15))
  }
  trimws(as.character(value))
}

.env_name <- function(name) paste0("WAFERMON_", toupper(name))

.show <- function(value) {
  if (is.character(value)) paste0("'", value, "'") else format(value)
}

#' Parse a duration such as 30, 500ms, 30s, 5m, 1h or 2d into seconds
#' @noRd
.parse_duration <- function(value) {
  text <- tolower(.as_text(value))
  m <- regmatches(text, regexec("^([0-9]+(\\.[0-9]+)?)\\s*(ms|s|m|h|d)?$", text))[[1]]
  if (length(m) == 0) {
    stop("expected a duration such as 30, 500ms, 30s, 5m, 1h or 2d, got ", .show(value), call. = FALSE)
  }
  unit <- c(ms = 0.001, s = 1, m = 60, h = 3600, d = 86400)[[if (nzchar(m[4])) m[4] else "s"]]
  as.numeric(m[2]) * unit
}

#' Parse a size such as 1048576, 64MiB or 1GB into bytes
#' @noRd
.parse_size <- function(value) {
  text <- .as_text(value)
  m <- regmatches(text, regexec("^([0-9]+(\\.[0-9]+)?)\\s*([KMGT]i?B|B)?$", text, ignore.case = TRUE))[[1]]
  if (length(m) == 0) {
    stop("expected a size such as 1048576, 64MiB or 1GB, got ", .show(value), call. = FALSE)
  }
  unit <- toupper(m[4])
  if (!nzchar(unit)) unit <- "B"
  factor <- switch(unit,
    "B" = 1, "KB" = 1e3, "MB" = 1e6, "GB" = 1e9, "TB" = 1e12,
    "KIB" = 1024, "MIB" = 1024^2, "GIB" = 1024^3, "TIB" = 1024^4
  )
  size <- as.numeric(m[2]) * factor
  if (size < 1024^2) stop("must be at least 1MiB, got ", .show(value), call. = FALSE)
  size
}

.parse_integer <- function(minimum) {
  function(value) {
    text <- .as_text(value)
    if (is.logical(value) || !grepl("^[+-]?[0-9]+$", text)) {
      stop("expected an integer, got ", .show(value), call. = FALSE)
    }
    number <- as.numeric(text)
    if (number < minimum) stop("must be at least ", minimum, ", got ", text, call. = FALSE)
    as.integer(number)
  }
}

.parse_positive_duration <- function(value) {
  seconds <- .parse_duration(value)
  if (seconds <= 0) stop("must be more than 0, got ", .show(value), call. = FALSE)
  seconds
}

.parse_boolean <- function(value) {
  if (is.logical(value) && length(value) == 1 && !is.na(value)) return(value)
  text <- trimws(tolower(as.character(value)))
  if (text %in% c("1", "true", "yes", "on")) return(TRUE)
  if (text %in% c("0", "false", "no", "off")) return(FALSE)
  stop("expected true or false, got ", .show(value), call. = FALSE)
}

.parse_mode <- function(value) {
  text <- trimws(tolower(as.character(value)))
  if (!text %in% c("sidecar", "direct")) {
    stop("must be one of sidecar, direct, got ", .show(value), call. = FALSE)
  }
  text
}

.parse_sidecar_url <- function(value) {
  text <- trimws(as.character(value))
  if (!grepl("^https?://[^/:?#]+(:[0-9]{1,5})?(/.*)?$", text)) {
    stop("expected an http:// or https:// URL such as http://127.0.0.1:17000, got ",
      .show(value),
      call. = FALSE
    )
  }
  sub("/+$", "", text)
}

.parse_direct_url <- function(value) {
  text <- trimws(as.character(value))
  hint <- "expected file:///absolute/path"
  if (grepl("^s3://", text)) {
    stop("s3:// is not offered by the R SDK (use the sidecar, or ", hint, "), got ",
      .show(value),
      call. = FALSE
    )
  }
  if (!grepl("^file://(localhost)?/", text)) stop(hint, ", got ", .show(value), call. = FALSE)
  text
}

.parse_site_id <- function(value) {
  text <- as.character(value)
  if (!grepl(.site_id_pattern, text)) {
    stop("must be 1-64 letters, digits, '.', '_' or '-' starting with a letter or digit, got ",
      .show(value),
      call. = FALSE
    )
  }
  text
}

.parse_path <- function(value) {
  text <- trimws(as.character(value))
  if (!nzchar(text)) stop("must not be empty", call. = FALSE)
  path.expand(text)
}

.parsers <- list(
  mode = .parse_mode, sidecar_url = .parse_sidecar_url,
  token = function(value) if (nzchar(value)) .secret(as.character(value)) else NULL,
  site_id = .parse_site_id, direct_url = .parse_direct_url, spool_dir = .parse_path,
  spool_max_bytes = .parse_size, queue_size = .parse_integer(1), batch_size = .parse_integer(1),
  flush_interval = .parse_positive_duration, timeout = .parse_positive_duration,
  max_retries = .parse_integer(0), enable_retries = .parse_boolean,
  retry_base_delay = .parse_positive_duration, retry_max_delay = .parse_positive_duration,
  replay_interval = .parse_positive_duration, flush_timeout = .parse_duration,
  verify_tls = .parse_boolean, console = .parse_boolean
)

# A token is kept as a 'wafermon_secret' so print(), str() and error messages never show it.
.secret <- function(text) structure(list(value = text), class = "wafermon_secret")

#' @export
format.wafermon_secret <- function(x, ...) "<secret>"

#' @export
print.wafermon_secret <- function(x, ...) {
  cat("<secret>\n")
  invisible(x)
}

.read_settings_file <- function(path) {
  where <- as.character(path)
  if (!file.exists(where)) .config_error(paste0(where, ": cannot read settings file: no such file"))
  ext <- tolower(tools::file_ext(where))
  data <- tryCatch(
    switch(ext,
      yaml = ,
      yml = yaml::read_yaml(where),
      toml = .read_flat_toml(where),
      .config_error(paste0(where, ": expected a .yaml, .yml or .toml file"))
    ),
    wafermon_config_error = function(e) stop(e),
    error = function(e) {
      .config_error(paste0(where, ": not valid ", toupper(ext), ": ", conditionMessage(e)))
    }
  )
  if (is.null(data)) data <- list()
  if (!is.list(data) || (length(data) && is.null(names(data)))) {
    .config_error(paste0(where, ": expected a mapping of settings"))
  }
  if (!is.null(data$wafermon_sdk)) data <- data$wafermon_sdk
  data
}

# The settings files the other SDKs read are flat: `key = value` lines, optionally under
# `[wafermon_sdk]`. No TOML parser is packaged in Debian for R, so this reads that subset
# (strings, numbers, booleans, comments) and refuses anything else by line number.
.read_flat_toml <- function(path) {
  lines <- readLines(path, warn = FALSE, encoding = "UTF-8")
  out <- list()
  section <- ""
  for (i in seq_along(lines)) {
    line <- trimws(sub("^([^\"'#]*(\"[^\"]*\"|'[^']*')?[^\"'#]*)#.*$", "\\1", lines[[i]]))
    if (!nzchar(line)) next
    if (grepl("^\\[[A-Za-z0-9_.-]+\\]$", line)) {
      section <- gsub("^\\[|\\]$", "", line)
      next
    }
    m <- regmatches(line, regexec("^([A-Za-z0-9_-]+)\\s*=\\s*(.+)$", line))[[1]]
    if (length(m) == 0) stop("line ", i, ": expected key = value", call. = FALSE)
    raw <- trimws(m[3])
    value <- if (grepl("^\".*\"$|^'.*'$", raw)) {
      substr(raw, 2, nchar(raw) - 1)
    } else if (raw %in% c("true", "false")) {
      raw == "true"
    } else if (grepl("^[+-]?[0-9_]+(\\.[0-9]+)?$", raw)) {
      gsub("_", "", raw)
    } else {
      stop("line ", i, ": only strings, numbers and booleans are read, got ", raw, call. = FALSE)
    }
    if (section %in% c("", "wafermon_sdk")) out[[m[2]]] <- value
  }
  out
}

.config_error <- function(message) {
  stop(structure(
    class = c("wafermon_config_error", "error", "condition"),
    list(message = message, call = NULL)
  ))
}

#' Read and check wafermon settings
#'
#' Settings come from, later winning: the defaults, a settings file (YAML or flat TOML,
#' keys at the top level or under `wafermon_sdk`), the `WAFERMON_*` environment variables,
#' a named list given as `config`, and the arguments. Every fault is reported at once, each named the way it was given
#' (`WAFERMON_MODE: must be one of sidecar, direct, got 'sidcar'`). Nothing connects.
#'
#' @param config `NULL` (the file `WAFERMON_SDK_CONFIG` names, if any), the path of a
#'   settings file, or a named list of settings.
#' @param ... Settings by name (`mode`, `sidecar_url`, `site_id`, ...), winning over the rest.
#' @return A named list of class `wafermon_settings`.
#' @examples
#' s <- wafermon_settings(list(site_id = "fab1", flush_interval = "50ms"))
#' s$flush_interval
#' @export
wafermon_settings <- function(config = NULL, ...) {
  values <- .defaults()
  problems <- character()
  given_as <- list()
  take <- function(name, raw, where) {
    if (!name %in% .setting_names) {
      problems <<- c(problems, paste0(
        where, ": unknown setting (known: ",
        paste(sort(.setting_names), collapse = ", "), ")"
      ))
      return()
    }
    if (is.null(raw)) {
      values[name] <<- list(NULL)
      return()
    }
    parsed <- tryCatch(list(.parsers[[name]](raw)), error = function(e) {
      problems <<- c(problems, paste0(where, ": ", conditionMessage(e)))
      NULL
    })
    if (!is.null(parsed)) {
      values[name] <<- parsed
      given_as[[name]] <<- where
    }
  }
  file_values <- list()
  file_label <- NULL
  if (is.null(config)) {
    env_file <- Sys.getenv("WAFERMON_SDK_CONFIG", "")
    if (nzchar(env_file)) config <- env_file
  }
  if (is.character(config)) {
    file_values <- .read_settings_file(config)
    file_label <- config
  } else if (!is.null(config) && !is.list(config)) {
    .config_error("config: expected NULL, a settings file path or a named list")
  }
  for (name in names(file_values)) take(name, file_values[[name]], paste0(file_label, ": ", name))
  for (name in .setting_names) {
    raw <- Sys.getenv(.env_name(name), unset = NA)
    if (!is.na(raw) && (nzchar(trimws(raw)) || name == "token")) take(name, raw, .env_name(name))
  }
  # A list given as `config` is the program's own choice: it wins over the environment.
  if (is.list(config)) for (name in names(config)) take(name, config[[name]], name)
  overrides <- list(...)
  for (name in names(overrides)) take(name, overrides[[name]], name)
  if (length(problems)) .config_error(paste(problems, collapse = "; "))
  if (values$mode == "direct" && is.null(values$direct_url)) {
    .config_error(paste0(
      given_as$mode %||% "mode", ": 'direct' needs a direct target: ",
      "WAFERMON_DIRECT_URL (file:///absolute/path)"
    ))
  }
  if (values$retry_max_delay < values$retry_base_delay) {
    .config_error("WAFERMON_RETRY_MAX_DELAY: must not be less than WAFERMON_RETRY_BASE_DELAY")
  }
  structure(values, class = "wafermon_settings")
}

`%||%` <- function(a, b) if (is.null(a)) b else a

#' @export
print.wafermon_settings <- function(x, ...) {
  for (name in names(x)) {
    value <- x[[name]]
    cat(name, ": ", if (is.null(value)) "<none>" else format(value), "\n", sep = "")
  }
  invisible(x)
}
