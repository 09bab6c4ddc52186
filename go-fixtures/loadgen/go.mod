module gopeek.test/loadgen

go 1.19
