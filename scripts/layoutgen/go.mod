module gopeek.dev/layoutgen

go 1.19
