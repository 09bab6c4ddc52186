module gopeek.test/cpuburn

go 1.19
