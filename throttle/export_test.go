package throttle

// SetBeforeFailReleased sets the hook that runs between a failure's write
// and its leaving flight, and returns a func that clears it.
func SetBeforeFailReleased(f func()) (reset func()) {
	beforeFailReleased = f
	return func() { beforeFailReleased = nil }
}
