module gopeek.test/parkedargs

go 1.19
