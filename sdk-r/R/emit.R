# Events handed over in wire form (schema/event.v1.schema.json).

.kinds <- c("started", "progress", "finished", "failed")
.time_pattern <- "^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,6})?Z$"

# The checks that decide where an event goes (site, day) and that it is an event at all;
# the sidecar validates the rest and its refusals are counted as `rejected`.
.check_wire_event <- function(event) {
  if (is.character(event) && length(event) == 1L) {
    event <- tryCatch(jsonlite::fromJSON(event, simplifyVector = FALSE), error = function(e) NULL)
    if (is.null(event)) return("not valid JSON")
  }
  if (!is.list(event) || is.null(names(event))) return("expected a named list (a JSON object)")
  for (field in c("schema_version", "event_id", "kind", "time", "site_id", "app", "entity")) {
    if (is.null(event[[field]])) return(paste0(field, ": required"))
  }
  if (!is.character(event$kind) || !event$kind %in% .kinds) {
    return(paste0("kind: must be one of ", paste(.kinds, collapse = ", "), ", got ", .show(event$kind)))
  }
  if (!is.character(event$site_id) || !grepl(.site_id_pattern, event$site_id, perl = TRUE)) {
    return(paste0("site_id: not a valid site id: ", .show(event$site_id)))
  }
  if (!is.character(event$time) || !grepl(.time_pattern, event$time, perl = TRUE)) {
    return(paste0("time: expected RFC 3339 UTC with Z, got ", .show(event$time)))
  }
  event
}

#' Queue one event in wire form
#'
#' For events made elsewhere (another tool's log, a replay): a named list as
#' `jsonlite::fromJSON(text, simplifyVector = FALSE)` gives it, or the JSON text itself.
#' An event whose `kind`, `site_id`, `time` or required fields are wrong is refused
#' (counted as `rejected`, with a warning naming the field); the sidecar checks the rest.
#'
#' @param event The event.
#' @inheritParams wafermon_flush
#' @return `TRUE` if it was queued.
#' @examples
#' \dontrun{
#' emit_event(list(
#'   schema_version = 1, event_id = wafermon_uuid(), kind = "started",
#'   time = "2026-11-28T08:00:00Z", site_id = "fab1",
#'   app = list(name = "external-tool"), entity = list(type = "job", id = "ext-1")
#' ))
#' }
#' @export
emit_event <- function(event, client = wafermon_client()) {
  checked <- .check_wire_event(event)
  if (is.character(checked)) {
    client$counters$rejected <- client$counters$rejected + 1
    warning("wafermon: event refused: ", checked, call. = FALSE)
    return(FALSE)
  }
  .enqueue(client, .to_json(checked), checked$site_id, checked$time)
}

#' Queue several events in wire form
#'
#' @param events A list of events (see [emit_event()]).
#' @inheritParams wafermon_flush
#' @return How many were queued.
#' @export
emit_batch <- function(events, client = wafermon_client()) {
  queued <- 0L
  for (event in events) queued <- queued + isTRUE(emit_event(event, client))
  queued
}
