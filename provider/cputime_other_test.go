//go:build !unix

package provider

import "time"

// processCPU is not measured here; benchmarks then leave cpu-ns/op out.
func processCPU() time.Duration { return 0 }
