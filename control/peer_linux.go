package control

import (
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// listenPrivate binds the socket under umask 0077: it is created closed to
// others, not opened to them until a chmod closes it.
func listenPrivate(path string) (net.Listener, error) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	return net.Listen("unix", path)
}

// peerAllowed reports whether the connection comes from the server's own
// user or root, as the kernel saw it connect (SO_PEERCRED), with the uid.
func peerAllowed(c net.Conn) (int, bool) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return -1, false
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return -1, false
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil || cerr != nil {
		return -1, false
	}
	uid := int(cred.Uid)
	return uid, uid == 0 || uid == os.Getuid()
}
