module gopeek.test/wallclock

go 1.19
