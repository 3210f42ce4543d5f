package api

type Reply struct{ B int }
