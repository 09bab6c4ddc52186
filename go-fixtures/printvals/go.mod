module gopeek.test/printvals

go 1.19
