# Known answers for src/barometre/design.py, from R's `survey` package (Debian r-cran-survey).
#
#   Rscript tests/reference/survey_design.R [output directory]
#
# reads tests/reference/survey_design_data.csv (88 rows in 40 clusters, 2 strata, weights)
# and writes tests/reference/survey_design_shares.csv, survey_design_chisq.csv and
# survey_design_trend.csv, which
# tests/test_design.py compares with the Python values to 1e-6. R is needed only to
# regenerate these files; the test reads the committed outputs.
suppressPackageStartupMessages(library(survey))

here <- "tests/reference"
args <- commandArgs(trailingOnly = TRUE)
out <- if (length(args)) args[1] else here  # another directory: compare without overwriting
d <- read.csv(file.path(here, "survey_design_data.csv"), stringsAsFactors = FALSE)
for (k in c("x", "y", "z")) d[[paste0("is_", k)]] <- as.numeric(d$answer == k)

designs <- list(
  clustered = svydesign(ids = ~cluster, data = d),                                  # clustered, unweighted
  weighted = svydesign(ids = ~1, weights = ~weight, data = d),                      # weighted, no cluster
  stratified = svydesign(ids = ~cluster, strata = ~stratum, weights = ~weight, data = d, nest = TRUE)
)

shares <- list()
for (name in names(designs)) {
  des <- designs[[name]]
  for (g in c("(all)", "a", "b", "c")) {
    sub <- if (g == "(all)") des else subset(des, grp == g)
    for (k in c("x", "y", "z")) {
      f <- as.formula(paste0("~is_", k))
      m <- svymean(f, sub, deff = "replace")
      shares[[length(shares) + 1]] <- data.frame(
        design = name, group = g, answer = k,
        share = unname(coef(m)), se = unname(SE(m)), deff = unname(deff(m)),
        n = sum(if (g == "(all)") rep(TRUE, nrow(d)) else d$grp == g)
      )
    }
  }
}
write.csv(do.call(rbind, shares), file.path(out, "survey_design_shares.csv"), row.names = FALSE)

chisq <- list()
for (name in names(designs)) {
  t <- svychisq(~answer + grp, designs[[name]], statistic = "F")
  chisq[[length(chisq) + 1]] <- data.frame(
    design = name, statistic = unname(t$statistic), ndf = unname(t$parameter["ndf"]),
    ddf = unname(t$parameter["ddf"]), pvalue = unname(t$p.value)
  )
}
write.csv(do.call(rbind, chisq), file.path(out, "survey_design_chisq.csv"), row.names = FALSE)
# test for trend of an ordered answer across groups: Wald test of equal mean scores
trend <- list()
d$score <- match(d$answer, c("x", "y", "z"))
for (name in names(designs)) {
  des <- update(designs[[name]], score = match(answer, c("x", "y", "z")))
  m <- svyglm(score ~ grp, des)
  t <- regTermTest(m, ~grp)
  trend[[length(trend) + 1]] <- data.frame(
    design = name, statistic = unname(t$Ftest), ndf = unname(t$df), ddf = unname(t$ddf), pvalue = unname(t$p)
  )
}
write.csv(do.call(rbind, trend), file.path(out, "survey_design_trend.csv"), row.names = FALSE)
cat("R", R.version$major, ".", R.version$minor, " survey ", as.character(packageVersion("survey")), "\n", sep = "")
