//go:build !linux

package control

import "net"

// listenPrivate: where umask is not portable, the chmod after it and the
// data directory's mode (0700) keep the socket private.
func listenPrivate(path string) (net.Listener, error) { return net.Listen("unix", path) }

// peerAllowed: without SO_PEERCRED, the file modes decide alone.
func peerAllowed(net.Conn) (int, bool) { return -1, true }
