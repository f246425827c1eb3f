// Package control is the local channel between keyport's commands and a
// running `keyport serve`: HTTP over a Unix socket in the data directory.
//
// bbolt lets one process open the database, so a command that needs the
// data while the server runs must ask the server. A Unix socket keeps that
// channel off the network: only who can enter the data directory (0700)
// and write the socket (0600), the server's own user or root, can connect,
// and no port, token or TLS is involved. The socket is created under umask
// 0077, so it is never open to others even for a moment, and where the
// system says who connects (SO_PEERCRED) the server checks it again. For now it serves one thing, a
// consistent backup stream; the admin API can grow here.
package control

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"syscall"
	"time"
)

// SocketName is the socket's file name in the data directory.
const SocketName = "keyport.sock"

// ErrNoServer is returned (wrapped) by the client when no server answers
// on the socket: there is none, or it is not listening.
var ErrNoServer = errors.New("no keyport server answers on the control socket")

// backupErrorTrailer carries a failure that happened after the stream began.
const backupErrorTrailer = "Keyport-Backup-Error"

// Backuper writes a consistent copy of the database.
type Backuper interface {
	Backup(ctx context.Context, w io.Writer) error
}

// Server answers on the socket.
type Server struct {
	path string
	ln   net.Listener
	srv  *http.Server
}

// maxSocketPath is the longest path a Unix socket can be bound to or
// reached at (sun_path holds 108 bytes with the terminating NUL).
const maxSocketPath = 107

// errPathTooLong says the socket's path cannot be used.
var errPathTooLong = fmt.Errorf("longer than the %d bytes a Unix socket path may have", maxSocketPath)

// backupWriteTimeout bounds each write of a backup stream. The stream
// reads one database transaction, which holds up the file's growth past
// what is mapped (see storage/bolt); a client that stops reading must not
// hold it for ever.
var backupWriteTimeout = time.Minute

// Listen creates the socket at path. The caller holds the database lock,
// so no other server uses this data directory and a socket file left by
// one that crashed can go.
//
// api, when not nil, answers /api/v1: the management API as the local
// command line's (the caller vouches for the socket's owner-only access).
func Listen(path string, b Backuper, api http.Handler, log *slog.Logger) (*Server, error) {
	if len(path) > maxSocketPath {
		return nil, fmt.Errorf("control socket %s: %w", path, errPathTooLong)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	ln, err := listenPrivate(path)
	if err != nil {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	ln = &peerCheckedListener{Listener: ln, log: log}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /backup", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Trailer", backupErrorTrailer)
		start := time.Now()
		cw := &countingWriter{w: w, rc: http.NewResponseController(w)}
		if err := b.Backup(r.Context(), cw); err != nil {
			log.Error("backup through the control socket failed", "err", err)
			w.Header().Set(backupErrorTrailer, err.Error())
			return
		}
		log.Info("backup taken through the control socket", "bytes", cw.n, "took", time.Since(start).Round(time.Millisecond))
	})
	if api != nil {
		mux.Handle("/api/v1/", api)
	}
	return &Server{path: path, ln: ln, srv: &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}}, nil
}

// Serve answers until Close.
func (s *Server) Serve() error {
	if err := s.srv.Serve(s.ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Close stops answering, ending streams in progress, and removes the socket.
func (s *Server) Close() error {
	err := s.srv.Close()
	_ = os.Remove(s.path)
	return err
}

// peerCheckedListener closes connections from users other than the
// server's own and root (see peerAllowed).
type peerCheckedListener struct {
	net.Listener
	log *slog.Logger
}

func (l *peerCheckedListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if uid, ok := peerAllowed(c); !ok {
			l.log.Warn("control socket: refused a connection from another user", "uid", uid)
			c.Close()
			continue
		}
		return c, nil
	}
}

// countingWriter counts what it writes and gives each write
// backupWriteTimeout.
type countingWriter struct {
	w  io.Writer
	rc *http.ResponseController
	n  int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	if err := c.rc.SetWriteDeadline(time.Now().Add(backupWriteTimeout)); err != nil {
		return 0, err
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// Client returns an HTTP client whose requests all go to the server
// listening at socketPath, whatever their URL's host (use http://keyport/).
// Its Do returns ErrNoServer (wrapped) when no server answers there.
func Client(socketPath string) (*http.Client, error) {
	if len(socketPath) > maxSocketPath {
		// No server could have bound it either (Listen refuses).
		return nil, fmt.Errorf("%w: its path %s is %w", ErrNoServer, socketPath, errPathTooLong)
	}
	return &http.Client{Transport: noServerTransport{socketPath: socketPath, rt: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socketPath)
		},
	}}}, nil
}

// noServerTransport names a missing server ErrNoServer.
type noServerTransport struct {
	socketPath string
	rt         *http.Transport
}

func (t noServerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.rt.RoundTrip(r)
	if err != nil && (errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED)) {
		return nil, fmt.Errorf("%w (%s)", ErrNoServer, t.socketPath)
	}
	return resp, err
}

// Backup asks the server listening at socketPath for a backup and writes
// it to w. Without a server it returns ErrNoServer before writing anything.
func Backup(ctx context.Context, socketPath string, w io.Writer) error {
	client, err := Client(socketPath)
	if err != nil {
		return err
	}
	defer client.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://keyport/backup", nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		if errors.Is(err, ErrNoServer) {
			return err
		}
		return fmt.Errorf("control socket %s: %w", socketPath, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return fmt.Errorf("backup through %s: %s: %s", socketPath, resp.Status, msg)
	}
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("backup through %s: %w", socketPath, err)
	}
	if msg := resp.Trailer.Get(backupErrorTrailer); msg != "" {
		return fmt.Errorf("backup through %s: the server failed: %s", socketPath, msg)
	}
	return nil
}
