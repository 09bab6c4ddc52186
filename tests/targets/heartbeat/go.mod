module gopeek.test/heartbeat

go 1.21
