//go:build !unix

package bolt

import "time"

// processCPU is not measured here; benchmarks then report 0.
func processCPU() time.Duration { return 0 }
