library(testthat)
library(wafermon)

test_check("wafermon")
