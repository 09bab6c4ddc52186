module gopeek.test/churn

go 1.19
