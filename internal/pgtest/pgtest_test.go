package pgtest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { Main(m) }

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatalf("connect %s: %v", dsn, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func TestDatabasesAreFreshAndApart(t *testing.T) {
	a, b := connect(t, Database(t)), connect(t, Database(t))
	if _, err := a.Exec(t.Context(), "CREATE TABLE t (x int); INSERT INTO t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := b.QueryRow(t.Context(), "SELECT count(*) FROM pg_tables WHERE tablename = 't'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("a table made in one test database shows in another (%d)", n)
	}
	var version string
	if err := a.QueryRow(t.Context(), "SHOW server_version").Scan(&version); err != nil {
		t.Fatal(err)
	}
	t.Logf("PostgreSQL %s", version)
}

var schema = Template{Name: "pgtest_schema", Keep: []string{"seed"}, Prepare: func(ctx context.Context, dsn string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "CREATE TABLE seed (v text); INSERT INTO seed VALUES ('x'); CREATE TABLE kv (k text PRIMARY KEY, v text)")
	return err
}}

func count(t *testing.T, conn *pgx.Conn, table string) int {
	t.Helper()
	var n int
	if err := conn.QueryRow(t.Context(), "SELECT count(*) FROM "+table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Copies in use at once are apart, and a copy reused after a test ended
// is as fresh as a new one: written tables empty, kept ones as prepared.
func TestTemplateCopies(t *testing.T) {
	for round := range 3 {
		t.Run(fmt.Sprint(round), func(t *testing.T) {
			a, b := connect(t, schema.Database(t)), connect(t, schema.Database(t))
			for _, c := range []*pgx.Conn{a, b} {
				if n, m := count(t, c, "kv"), count(t, c, "seed"); n != 0 || m != 1 {
					t.Fatalf("a fresh copy holds %d rows of kv and %d of seed, want 0 and 1", n, m)
				}
			}
			if _, err := a.Exec(t.Context(), "INSERT INTO kv VALUES ('only-a', 'y')"); err != nil {
				t.Fatal(err)
			}
			if n := count(t, b, "kv"); n != 0 {
				t.Fatalf("a row written in one copy shows in another")
			}
		})
	}
}

// A test process killed with SIGKILL runs no cleanup: its server must
// die with it (the parent death signal), and its dir goes at the next
// start.
func TestServerDiesWithAKilledTestProcess(t *testing.T) {
	if os.Getenv("PGTEST_CHILD") == "1" {
		Database(t)
		fmt.Println("postmaster", cluster.cmd.Process.Pid, cluster.dir)
		time.Sleep(time.Minute) // until killed
		return
	}
	Database(t) // skips here, not in the child, when PostgreSQL is missing
	child := exec.Command(os.Args[0], "-test.run=^TestServerDiesWithAKilledTestProcess$", "-test.v")
	child.Env = append(os.Environ(), "PGTEST_CHILD=1")
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	var pid int
	var dir string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if _, err := fmt.Sscanf(sc.Text(), "postmaster %d %s", &pid, &dir); err == nil {
			break
		}
	}
	if pid == 0 {
		child.Process.Kill()
		child.Wait()
		t.Fatal("the child never reported its server")
	}
	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	child.Wait()
	for i := 0; alive(pid) && isPostgres(pid); i++ {
		if i == 500 {
			t.Fatalf("the server %d outlived its killed test process", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("the killed process's dir should still be there for removeStale: %v", err)
	}
	removeStale()
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("removeStale left the dead owner's dir %s: %v", dir, err)
	}
}
