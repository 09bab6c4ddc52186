module gopeek.test/leaky

go 1.19
