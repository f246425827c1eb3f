//go:build !unix

package bolt

import (
	"os"
	"time"
)

// unlock: closing the file releases the lock where bbolt does not use flock.
func unlock(*os.File) {}

// lockFile: bbolt locks the file itself after the header check, which here
// runs unlocked.
func lockFile(*os.File, bool, time.Duration) error { return nil }
