package bolt

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// growthProbe asks the file system whether the file at path could grow by
// room bytes: it allocates that much in a scratch file beside it, at the
// offset where the file ends, and removes it again. That fails as the
// file's own growth would: with ENOSPC on a full disk and with EFBIG
// beyond a file-size limit. Nothing is written and nothing is synced.
// File systems without fallocate are asked for their free space instead
// (statfs): passing them all would let a probe on a full disk pass
// through a write that reuses the file's free pages, and /healthz flap.
func growthProbe(path string, room int64) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("probe %s: %w", path, err)
	}
	scratch := path + ".probe"
	f, err := os.OpenFile(scratch, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("probe %s: %w", path, err)
	}
	defer os.Remove(scratch)
	defer f.Close()
	err = syscall.Fallocate(int(f.Fd()), 0, fi.Size(), room)
	if errors.Is(err, syscall.EOPNOTSUPP) || errors.Is(err, syscall.ENOSYS) {
		err = freeSpaceFor(path, room)
	}
	if err != nil {
		return fmt.Errorf("probe room for %s to grow by %d bytes: %w", path, room, err)
	}
	return nil
}

// freeSpaceFor fails with ENOSPC when the file system holding path has less
// than room bytes free for unprivileged users.
func freeSpaceFor(path string, room int64) error {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return err
	}
	// Block counts are in fragment-size units where that is set (FUSE
	// file systems, the likely ones without fallocate), as df reads them.
	unit := uint64(st.Frsize)
	if unit == 0 {
		unit = uint64(st.Bsize)
	}
	if free := st.Bavail * unit; free < uint64(room) {
		return fmt.Errorf("%d bytes free: %w", free, syscall.ENOSPC)
	}
	return nil
}
