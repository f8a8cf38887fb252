# A wafer lot as a monitored job, each wafer a subjob with a progress tick.
#
#   WAFERMON_SITE_ID=fab1 Rscript wafer_lot.R                      # to the sidecar on 127.0.0.1:17000
#   WAFERMON_SITE_ID=fab1 WAFERMON_MODE=direct \
#     WAFERMON_DIRECT_URL=file:///tmp/wafermon-events Rscript wafer_lot.R
library(wafermon)

wafermon_init() # settings from WAFERMON_* (or the file WAFERMON_SDK_CONFIG names)

fit_wafer <- function(wafer) {
  x <- rnorm(2e5) # stands for the yield model of one wafer
  tick(0.5, metadata = list(step = "fit"))
  if (wafer == "W99") warning("edge dies excluded")
  mean(x)
}

yields <- with_monitored("LOT-12345",
  app = list(name = "yield-spc", version = "1.0.0"),
  metadata = list(tool = "etch-07", recipe = "POLY-3"),
  {
    vapply(c("W01", "W02", "W03"), function(w) with_monitored(w, fit_wafer(w)), numeric(1))
  }
)
print(round(yields, 4))
delivered <- wafermon_close()
cat("delivered:", delivered, "\n")
