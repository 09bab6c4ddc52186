module gopeek.test/stwstuck

go 1.19
