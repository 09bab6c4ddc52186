module gopeek.test/parked

go 1.19
