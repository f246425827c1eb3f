package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keyport/keyport/storage/bolt"
)

// slowTokenRequest is a token request (client_credentials) in progress:
// the client has sent its headers with "Expect: 100-continue", and the
// server, whose handler began to read the body, has answered 100
// Continue; the body follows when the test says so, as on a slow network.
// No hook in the server is involved.
type slowTokenRequest struct {
	conn net.Conn
	r    *bufio.Reader
	body string
}

func startSlowTokenRequest(t *testing.T, addr, clientID, secret string) *slowTokenRequest {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	body := url.Values{"grant_type": {"client_credentials"}}.Encode()
	auth := base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(clientID) + ":" + url.QueryEscape(secret)))
	head := fmt.Sprintf("POST /oauth/token HTTP/1.1\r\nHost: %s\r\nAuthorization: Basic %s\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n",
		addr, auth, len(body))
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatal(err)
	}
	s := &slowTokenRequest{conn: conn, r: bufio.NewReader(conn), body: body}
	line, err := s.r.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100 ") {
		t.Fatalf("the token endpoint did not start reading the body: %q %v", line, err)
	}
	if blank, err := s.r.ReadString('\n'); err != nil || blank != "\r\n" {
		t.Fatalf("after 100 Continue: %q %v", blank, err)
	}
	return s
}

// finish sends the body and reads the response.
func (s *slowTokenRequest) finish() (int, map[string]any, error) {
	if _, err := io.WriteString(s.conn, s.body); err != nil {
		return 0, nil, err
	}
	resp, err := http.ReadResponse(s.r, nil)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var out map[string]any
	err = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out, err
}

// exited waits for the child to exit and returns how (keeping it for
// stop).
func (c *childServer) exited() error {
	err := <-c.done
	c.done <- err
	return err
}

// refusedSoon dials addr until a connection is refused, for at most 10s.
func refusedSoon(addr string) error {
	var err error
	for range 500 {
		var c net.Conn
		c, err = net.DialTimeout("tcp", addr, time.Second)
		if errors.Is(err, syscall.ECONNRESET) {
			// Accepted into the backlog as the listener closed, and reset
			// with it: the close is under way; the next dial tells.
			continue
		}
		if err != nil {
			return err
		}
		c.Close()
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// TestGracefulShutdown: on SIGTERM, `keyport serve` refuses new
// connections at once, lets a request in progress finish (its client
// sends the rest of its body after the signal and gets its token), exits
// with code 0, and leaves the database closed cleanly: the lock released,
// the file consistent, and the next start finds nothing to repair.
func TestGracefulShutdown(t *testing.T) {
	dir := t.TempDir()
	env := cliEnv(dir)
	r := cliMust(t, env, "", "client", "create", "--id", "svc", "--grant", "client_credentials")
	secret := strings.TrimSpace(r.Stdout[strings.LastIndex(r.Stdout, ": ")+2:])
	c := startChild(t, dir, "[http]\nshutdown_timeout = \"30s\"\n")

	slow := startSlowTokenRequest(t, c.Addr, "svc", secret)
	// An idle keep-alive connection, which shutdown closes rather than
	// waits for.
	idle := &http.Client{Transport: &http.Transport{}}
	if resp, err := idle.Get(c.URL + "/healthz"); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
	}

	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err := refusedSoon(c.Addr)
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("a new connection after SIGTERM: %v\n%s", err, c.Logs())
	}
	select {
	case err := <-c.done:
		c.done <- err
		t.Fatalf("keyport serve exited (%v) with a request in progress:\n%s", err, c.Logs())
	default:
	}
	status, tok, err := slow.finish()
	if err != nil || status != http.StatusOK || tok["access_token"] == nil {
		t.Fatalf("the request in progress at SIGTERM: %d %v %v\n%s", status, tok, err, c.Logs())
	}
	if err := c.exited(); err != nil {
		t.Fatalf("keyport serve exited with %v after SIGTERM:\n%s", err, c.Logs())
	}
	if !strings.Contains(c.Logs(), "msg=stopped") {
		t.Errorf("no orderly stop in the log:\n%s", c.Logs())
	}
	if strings.Contains(c.Logs(), "were cut") {
		t.Errorf("a request was cut:\n%s", c.Logs())
	}

	// Closed cleanly: nobody holds the lock, the file checks, and a new
	// start neither repairs nor recreates anything.
	db := filepath.Join(dir, "keyport.db")
	release, err := bolt.LockFile(db, 100*time.Millisecond)
	if err != nil {
		t.Fatalf("the database lock after exit: %v", err)
	}
	release()
	if _, err := bolt.Verify(context.Background(), db); err != nil {
		t.Fatalf("the database after a graceful shutdown: %v", err)
	}
	next := startChild(t, dir, "log_level = \"debug\"\n")
	status, _, intro := postFormTo(t, next.URL+"/oauth/introspect", url.Values{"token": {tok["access_token"].(string)}}, "svc", secret)
	if status != http.StatusOK || intro["active"] != true {
		t.Errorf("the token issued during the shutdown, after a restart: %d %v", status, intro)
	}
	if err := next.stop(); err != nil {
		t.Errorf("second stop: %v", err)
	}
	for _, bad := range []string{"damaged", "recreating", "check takes longer"} {
		if strings.Contains(next.Logs(), bad) {
			t.Errorf("the start after a graceful shutdown logged %q:\n%s", bad, next.Logs())
		}
	}
}

// TestShutdownTimeoutCutsRequests: a request still in progress when
// http.shutdown_timeout runs out is cut, and the process still exits 0
// with the database closed.
func TestShutdownTimeoutCutsRequests(t *testing.T) {
	dir := t.TempDir()
	c := startChild(t, dir, "[http]\nshutdown_timeout = \"1s\"\n")
	stuck := startSlowTokenRequest(t, c.Addr, "nobody", "nothing") // never finished
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := c.exited(); err != nil {
		t.Fatalf("keyport serve exited with %v:\n%s", err, c.Logs())
	}
	if !strings.Contains(c.Logs(), "requests still in progress after http.shutdown_timeout were cut") {
		t.Errorf("the cut is not logged:\n%s", c.Logs())
	}
	if _, err := stuck.conn.Read(make([]byte, 1)); err == nil {
		t.Error("the stuck connection is still open")
	}
	release, err := bolt.LockFile(filepath.Join(dir, "keyport.db"), 100*time.Millisecond)
	if err != nil {
		t.Fatalf("the database lock after exit: %v", err)
	}
	release()
}

// postFormTo posts form to u with HTTP basic authentication and decodes
// the JSON answer.
func postFormTo(t *testing.T, u string, form url.Values, user, pass string) (int, http.Header, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(user), url.QueryEscape(pass))
	return doJSON(t, http.DefaultClient, req)
}

// TestHealthCommand: `keyport health` succeeds against a running server
// found through the listen address, and fails once it has stopped.
func TestHealthCommand(t *testing.T) {
	c := startChild(t, "", "")
	env := map[string]string{"KEYPORT_LISTEN": c.Addr}
	r := cliMust(t, env, "", "health")
	if !strings.Contains(r.Stdout, "http://"+c.Addr+"/healthz: 200 OK") {
		t.Errorf("health: %s", r)
	}
	cliFail(t, env, "", 1, "answered 404 Not Found", "health", "--url", "http://"+c.Addr+"/nothing")
	if err := c.stop(); err != nil {
		t.Fatal(err)
	}
	cliFail(t, env, "", 1, "health: Get \"http://"+c.Addr+"/healthz\"", "health")
	for listen, want := range map[string]string{":8080": "127.0.0.1:8080", "0.0.0.0:80": "127.0.0.1:80", "[::]:8080": "[::1]:8080", "localhost:8080": "localhost:8080"} {
		if got := localAddr(listen); got != want {
			t.Errorf("localAddr(%q) = %q, want %q", listen, got, want)
		}
	}
}
