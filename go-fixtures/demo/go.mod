module gopeek.test/demo

go 1.19
