module gopeek.test/parkedlocals

go 1.19
