//go:build race

package main

// raceEnabled: this test binary (and so every child server it starts) runs
// under the race detector, which multiplies memory use and slows every
// goroutine; memory bounds in tests must allow for it.
const raceEnabled = true
