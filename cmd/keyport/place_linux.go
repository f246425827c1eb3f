package main

import (
	"errors"

	"golang.org/x/sys/unix"
)

// renameNoReplace renames from to to unless to exists (fs.ErrExist then).
// Where the file system cannot (renameat2 with RENAME_NOREPLACE is refused)
// it returns errors.ErrUnsupported and place copies instead. A variable so
// that tests can take that path on any file system.
var renameNoReplace = func(from, to string) error {
	err := unix.Renameat2(unix.AT_FDCWD, from, unix.AT_FDCWD, to, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EOPNOTSUPP) {
		return errors.ErrUnsupported
	}
	return err
}
