module github.com/pglease/pglease/client/go

go 1.22
