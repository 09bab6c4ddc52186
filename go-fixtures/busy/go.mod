module gopeek.test/busy

go 1.19
