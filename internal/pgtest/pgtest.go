// Package pgtest runs a throwaway PostgreSQL cluster for tests: Debian's
// postgresql package (/usr/lib/postgresql/N/bin), initdb into a temp dir,
// the server listening on a unix socket in that dir and on a free loopback
// port, with the durability settings off (fsync, synchronous_commit,
// full_page_writes: a crash loses a test database, nothing more).
//
// One cluster serves the whole test process (it starts at the first
// Database call); every test gets a database of its own, dropped when the
// test ends. Tests that need a schema use a Template: the schema is built
// once in a template database, and each test's database is a copy of it
// (CREATE DATABASE … TEMPLATE), which is much faster than migrating every
// database.
//
// The package's TestMain must call Main, which stops the cluster when the
// tests end. A test process that dies without Main's cleanup (a panic, a
// SIGKILL, a timeout) does not leave the server running: the postmaster is
// a child that gets SIGKILL when the test process dies (Linux's parent
// death signal), and the next Start removes clusters whose test process
// is gone.
//
// PostgreSQL refuses to run as root: a root test process runs initdb and
// the server as the "postgres" user (the package creates it), in a temp
// dir that user owns.
//
// When the binaries are missing the test is skipped with a message, unless
// KEYPORT_REQUIRE_INTEGRATION=1 (CI and scripts/test.sh), where it fails.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// dirPrefix names the cluster dirs in os.TempDir, so that Start can find
// the ones crashed test processes left.
const dirPrefix = "keyport-pgtest-"

// Cluster is a running PostgreSQL server.
type Cluster struct {
	dir  string // owns data/, the socket and the log
	host string // the socket dir
	port int
	cmd  *exec.Cmd
	done chan error
}

var (
	startOnce sync.Once
	cluster   *Cluster
	startErr  error
	missing   string // the binaries' absence, for Skip or Fatal
)

// Main runs the package's tests and stops the cluster afterwards; call it
// from TestMain:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	if cluster != nil {
		cluster.stop()
	}
	os.Exit(code)
}

// Stop stops the cluster, if this process started one: for a TestMain
// that cannot hand its exit to Main (it runs other servers' Run too).
func Stop() {
	if cluster != nil {
		cluster.stop()
	}
}

// binDir finds the newest installed PostgreSQL's bin dir.
// BinDir is the directory of the PostgreSQL programs the clusters run
// (pg_dump and pg_restore too), the newest installed.
func BinDir() (string, error) { return binDir() }

func binDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int { return versionOf(b) - versionOf(a) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", errors.New("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb; apt-get install postgresql)")
}

func versionOf(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

// get starts the cluster once per process, or skips or fails t.
func get(t testing.TB) *Cluster {
	t.Helper()
	startOnce.Do(func() {
		bin, err := binDir()
		if err != nil {
			missing = err.Error()
			return
		}
		cluster, startErr = start(bin)
	})
	if missing != "" {
		if os.Getenv("KEYPORT_REQUIRE_INTEGRATION") == "1" {
			t.Fatalf("%s; KEYPORT_REQUIRE_INTEGRATION=1 requires the PostgreSQL tests", missing)
		}
		t.Skipf("%s: skipping the PostgreSQL tests", missing)
	}
	if startErr != nil {
		t.Fatalf("start PostgreSQL: %v", startErr)
	}
	return cluster
}

// start makes a cluster in a fresh temp dir and starts its server.
func start(bin string) (*Cluster, error) {
	removeStale()
	dir, err := os.MkdirTemp("", dirPrefix)
	if err != nil {
		return nil, err
	}
	c := &Cluster{dir: dir, host: dir}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(dir)
		}
	}()
	// The owner file tells a later Start whose cluster this is.
	if err := os.WriteFile(filepath.Join(dir, "owner"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return nil, err
	}
	cred, err := credential(dir)
	if err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "data")
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "--auth=trust",
		"--encoding=UTF8", "--locale=C", "--no-sync", "--no-instructions")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	c.port = port
	logf, err := os.OpenFile(filepath.Join(dir, "postgres.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o666)
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child has its own copy
	// Not pg_ctl, which leaves the server as a daemon: the postmaster is
	// our child, killed with us (Pdeathsig), and its backends follow it.
	c.cmd = exec.Command(filepath.Join(bin, "postgres"), "-D", data,
		"-p", strconv.Itoa(port), "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="+dir,
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=200", "-c", "shared_buffers=64MB", "-c", "log_min_messages=warning")
	c.cmd.Stdout, c.cmd.Stderr = logf, logf
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL, Setpgid: true}
	// Linux sends the parent death signal when the thread that started
	// the child ends, not the process: start it from a thread locked to a
	// goroutine that lives as long as the server.
	c.done = make(chan error, 1)
	started := make(chan error)
	go func() {
		runtime.LockOSThread()
		if err := c.cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		c.done <- c.cmd.Wait()
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	if err := c.waitReady(); err != nil {
		c.stop()
		return nil, err
	}
	ok = true
	return c, nil
}

// credential is who runs the server: the test process's user, or, for
// root (whom PostgreSQL refuses), the postgres user, who then owns dir.
func credential(dir string) (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		// The package makes the user; this is a test machine's root.
		if out, err := exec.Command("useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "postgres").CombinedOutput(); err != nil {
			return nil, fmt.Errorf("add the postgres user: %v: %s", err, out)
		}
		if u, err = user.Lookup("postgres"); err != nil {
			return nil, err
		}
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(dir, uid, gid); err != nil {
		return nil, err
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}, nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// waitReady polls until the server takes connections.
func (c *Cluster) waitReady() error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case err := <-c.done:
			c.done <- err
			return fmt.Errorf("postgres exited at start (%v): %s", err, c.log())
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		conn, err := pgx.Connect(ctx, c.dsn("postgres"))
		cancel()
		if err == nil {
			conn.Close(context.Background())
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("postgres did not accept connections: %v: %s", err, c.log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (c *Cluster) log() string {
	b, _ := os.ReadFile(filepath.Join(c.dir, "postgres.log"))
	return string(b)
}

// dsn is the connection string of database name, over the unix socket.
func (c *Cluster) dsn(name string) string {
	return fmt.Sprintf("host=%s port=%d user=postgres dbname=%s sslmode=disable", c.host, c.port, name)
}

// stop ends the server (an immediate shutdown: nothing in it is kept) and
// removes its dir.
func (c *Cluster) stop() {
	if c.cmd != nil && c.cmd.Process != nil {
		_ = c.cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-c.done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
			<-c.done
		}
	}
	os.RemoveAll(c.dir)
}

// removeStale kills and removes the clusters of test processes that are
// gone (killed before Main could stop theirs, on a system where the
// parent death signal did not reach the server).
func removeStale() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPrefix+"*"))
	for _, dir := range dirs {
		owner, err := os.ReadFile(filepath.Join(dir, "owner"))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(owner)))
		if err != nil || pid == os.Getpid() || alive(pid) {
			continue
		}
		if pidFile, err := os.ReadFile(filepath.Join(dir, "data", "postmaster.pid")); err == nil {
			first, _, _ := strings.Cut(string(pidFile), "\n")
			if pm, err := strconv.Atoi(strings.TrimSpace(first)); err == nil && pm > 1 && isPostgres(pm) {
				_ = syscall.Kill(pm, syscall.SIGQUIT)
			}
		}
		os.RemoveAll(dir)
	}
}

func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

func isPostgres(pid int) bool {
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	return err == nil && strings.HasPrefix(exe, "/usr/lib/postgresql/")
}

// Database creates an empty database for t, dropped when t ends, and
// returns its connection string.
func Database(t testing.TB) string {
	t.Helper()
	return get(t).create(t, "template0")
}

// Template is a database schema that tests start from: Prepare builds it
// once per process in a template database, and Database copies that, or
// reuses a copy an earlier test used, emptied (TRUNCATE) when that test
// ended: to the test, a fresh database either way.
type Template struct {
	Name string // a valid SQL identifier, unique per process
	// Prepare builds the schema in the database dsn names; it must close
	// every connection it opens.
	Prepare func(ctx context.Context, dsn string) error
	// Keep names the tables whose rows are part of the schema (a schema
	// version table): a database a test used is reused for the next
	// after every other table is emptied.
	Keep []string

	once sync.Once
	err  error
	mu   sync.Mutex
	free []string // copies emptied by tests that ended, for reuse
}

// Database creates a database for t from the template, dropped when t
// ends, and returns its connection string.
func (tp *Template) Database(t testing.TB) string {
	t.Helper()
	c := get(t)
	tp.once.Do(func() {
		ctx := context.Background()
		tp.err = c.exec(ctx, "CREATE DATABASE "+pgx.Identifier{tp.Name}.Sanitize())
		if tp.err == nil {
			tp.err = tp.Prepare(ctx, c.dsn(tp.Name))
		}
	})
	if tp.err != nil {
		t.Fatalf("prepare template database %s: %v", tp.Name, tp.err)
	}
	tp.mu.Lock()
	var name string
	if n := len(tp.free); n > 0 {
		name, tp.free = tp.free[n-1], tp.free[:n-1]
	}
	tp.mu.Unlock()
	if name == "" {
		name = c.copyOf(t, tp.Name)
	}
	t.Cleanup(func() {
		// Emptying the tables (one TRUNCATE) is much cheaper than a new
		// copy; a copy that cannot be emptied is dropped.
		if err := c.empty(name, tp.Keep); err != nil {
			t.Logf("empty test database %s: %v; dropping it", name, err)
			if err := c.exec(context.Background(), "DROP DATABASE "+name+" WITH (FORCE)"); err != nil {
				t.Errorf("drop test database: %v", err)
			}
			return
		}
		tp.mu.Lock()
		tp.free = append(tp.free, name)
		tp.mu.Unlock()
	})
	return c.dsn(name)
}

// empty truncates every table of database name in the public schema but
// keep, ending the connections a test left open first.
func (c *Cluster) empty(name string, keep []string) error {
	ctx := context.Background()
	if err := c.exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '"+name+"' AND pid <> pg_backend_pid()"); err != nil {
		return err
	}
	conn, err := pgx.Connect(ctx, c.dsn(name))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND NOT tablename = ANY($1) ORDER BY tablename", keep)
	if err != nil {
		return err
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(tables) == 0 {
		return err
	}
	for i, tbl := range tables {
		tables[i] = pgx.Identifier{tbl}.Sanitize()
	}
	_, err = conn.Exec(ctx, "TRUNCATE "+strings.Join(tables, ", ")+" CASCADE")
	return err
}

func (c *Cluster) create(t testing.TB, template string) string {
	t.Helper()
	name := c.copyOf(t, template)
	t.Cleanup(func() {
		// FORCE ends connections the test left open.
		if err := c.exec(context.Background(), "DROP DATABASE "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop test database: %v", err)
		}
	})
	return c.dsn(name)
}

// copyOf creates a database from template and returns its name.
func (c *Cluster) copyOf(t testing.TB, template string) string {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "test_" + hex.EncodeToString(b[:])
	ctx := context.Background()
	// FILE_COPY copies the template's files (after a checkpoint, cheap
	// with fsync off): about 40ms here, against about 190ms for WAL_LOG,
	// PostgreSQL 15's default, which writes every page through the WAL.
	if err := c.exec(ctx, fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s STRATEGY FILE_COPY", name, pgx.Identifier{template}.Sanitize())); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	return name
}

// exec runs one statement in the maintenance database.
func (c *Cluster) exec(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, c.dsn("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}
