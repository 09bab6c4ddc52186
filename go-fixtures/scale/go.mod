module gopeek.test/scale

go 1.19
