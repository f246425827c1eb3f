//go:build !unix

package bolt

import "os"

// unlock: closing the file releases the lock where bbolt does not use flock.
func unlock(*os.File) {}
