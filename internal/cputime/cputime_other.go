//go:build !unix

package cputime

import "time"

// Process is not measured here; benchmarks then leave cpu-ns/op out.
func Process() time.Duration { return 0 }
