module github.com/gohsm/gohsm/tests/vectors/hashmldsa

go 1.27
