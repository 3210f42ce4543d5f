package api

type Req struct{ A int }
