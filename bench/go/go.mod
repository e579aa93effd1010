module libctx/benchgo

go 1.19
