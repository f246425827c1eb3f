//go:build unix

package bolt

import (
	"os"
	"syscall"
	"time"

	bolterrors "go.etcd.io/bbolt/errors"
)

// unlock releases bbolt's lock on f. Closing f is not enough when bbolt
// panicked after mapping the file: the mapping keeps the open file, and
// with it the lock, alive.
func unlock(f *os.File) { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN) }

// lockFile takes the lock bbolt takes (flock, exclusive or shared), trying
// every 50ms as bbolt does, for at most timeout (0: for ever). bbolt's own
// flock on the same handle then succeeds at once.
func lockFile(f *os.File, exclusive bool, timeout time.Duration) error {
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX
	}
	const retry = 50 * time.Millisecond
	start := time.Now()
	for {
		err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
		if err != syscall.EWOULDBLOCK {
			return err
		}
		if timeout != 0 && time.Since(start) > timeout-retry {
			return bolterrors.ErrTimeout
		}
		time.Sleep(retry)
	}
}
