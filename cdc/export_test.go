package cdc

// WithGoMySQLDecoder makes a Reader decode every row with go-mysql's decoder instead of the fast
// decoder, so tests can compare the two.
func WithGoMySQLDecoder(o Options) Options {
	o.slowDecode = true
	return o
}
