package replica

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyport/keyport/internal/pgtest"
	"github.com/keyport/keyport/storage"
	"github.com/keyport/keyport/storage/postgres"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

var schema = pgtest.Template{Name: "keyport_schema", Keep: []string{"schema_version"}, Prepare: func(ctx context.Context, dsn string) error {
	d, err := postgres.Open(ctx, dsn, postgres.Options{})
	if err != nil {
		return err
	}
	return d.Close()
}}

// eventually is how long a test waits for what must happen.
const eventually = 30 * time.Second

// process is one keyport process's handle on the shared database, seen
// through a thin wrapper that counts the leads it asks for and reports
// the notices Watch has taken in (after Watch has marked them).
type process struct {
	*postgres.DB
	asked   atomic.Int64
	noticed chan string
}

func (p *process) TryLead(ctx context.Context, name string) (storage.Lead, error) {
	p.asked.Add(1)
	return p.DB.TryLead(ctx, name)
}

func (p *process) WatchChanges(ctx context.Context, ready func(), fn func(string)) error {
	return p.DB.WatchChanges(ctx, ready, func(topic string) {
		fn(topic)
		p.noticed <- topic
	})
}

// openProcesses opens n processes on one fresh database and a plain
// connection to it for the test's own look at the server.
func openProcesses(t *testing.T, n int) ([]*process, *pgx.Conn) {
	t.Helper()
	dsn := schema.Database(t)
	ps := make([]*process, n)
	for i := range ps {
		d, err := postgres.Open(t.Context(), dsn, postgres.Options{LeadCheck: 50 * time.Millisecond})
		if err != nil {
			t.Fatalf("open process %d: %v", i, err)
		}
		t.Cleanup(func() { d.Close() })
		ps[i] = &process{DB: d, noticed: make(chan string, 1000)}
	}
	admin, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close(context.Background()) })
	return ps, admin
}

func testLog(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(b []byte) (int, error) {
	w.t.Log(string(b))
	return len(b), nil
}

// terminate ends the server session of pid (as a crash of the process
// holding it, or a cut connection, would).
func terminate(t *testing.T, admin *pgx.Conn, query string) {
	t.Helper()
	var pid int
	if err := admin.QueryRow(t.Context(), query).Scan(&pid); err != nil {
		t.Fatalf("find the session to end: %v", err)
	}
	var ok bool
	if err := admin.QueryRow(t.Context(), "SELECT pg_terminate_backend($1)", pid).Scan(&ok); err != nil || !ok {
		t.Fatalf("terminate session %d: %v, %v", pid, ok, err)
	}
}

const leaderSession = `SELECT pid FROM pg_locks
	WHERE locktype = 'advisory' AND objsubid = 2 AND granted
		AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`

func await[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(eventually):
		t.Fatalf("%s did not happen within %v", what, eventually)
		panic("unreachable")
	}
}

// runs counts a job's runs across processes and the most that ran at once.
type runs struct {
	mu      sync.Mutex
	running int
	most    int
	by      map[string]int
}

func (r *runs) enter(who string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.running++
	r.most = max(r.most, r.running)
	if r.by == nil {
		r.by = map[string]int{}
	}
	r.by[who]++
}

func (r *runs) leave() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.running--
}

func (r *runs) total() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, c := range r.by {
		n += c
	}
	return n
}

// Three processes ask for one job's lead all the time; the job, which
// gives the lead up after a short while, runs many times and never in
// two processes at once.
func TestLedRunsTheJobInOneProcessAtATime(t *testing.T) {
	ps, _ := openProcesses(t, 3)
	ctx, cancel := context.WithCancel(t.Context())
	var r runs
	const want = 30
	enough := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	for i, p := range ps {
		who := fmt.Sprint("process ", i)
		wg.Go(func() {
			Led(ctx, p, "sweep", time.Millisecond, testLog(t), func(ctx context.Context) {
				r.enter(who)
				defer r.leave()
				// A stretch of work, or the end of the process.
				select {
				case <-time.After(5 * time.Millisecond):
				case <-ctx.Done():
				}
				if r.total() >= want {
					once.Do(func() { close(enough) })
				}
			})
		})
	}
	await(t, enough, fmt.Sprintf("%d runs of the job", want))
	cancel()
	wg.Wait()
	t.Logf("runs by process: %v", r.by)
	if r.most != 1 {
		t.Fatalf("the job ran in %d processes at once", r.most)
	}
	for _, p := range ps {
		if p.asked.Load() < 2 {
			t.Fatalf("a process asked for the lead %d times; the test needs them to contend", p.asked.Load())
		}
	}
}

// The leader's connection dies while it runs the job: the job's context
// ends there, and the other process, which was refused the lead so far,
// takes it and runs the job.
func TestLedFailsOverWhenTheLeadersConnectionIsKilled(t *testing.T) {
	ps, admin := openProcesses(t, 2)
	a, b := ps[0], ps[1]
	started := map[*process]chan struct{}{a: make(chan struct{}, 10), b: make(chan struct{}, 10)}
	stopped := map[*process]chan struct{}{a: make(chan struct{}, 10), b: make(chan struct{}, 10)}
	job := func(p *process) func(context.Context) {
		return func(ctx context.Context) {
			started[p] <- struct{}{}
			<-ctx.Done()
			stopped[p] <- struct{}{}
		}
	}
	ctxA, cancelA := context.WithCancel(t.Context())
	ctxB, cancelB := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancelA()
	defer cancelB()
	// a asks again only after an hour: once it has lost the lead, b is
	// the only one asking.
	wg.Go(func() { Led(ctxA, a, "key rotation", time.Hour, testLog(t), job(a)) })
	await(t, started[a], "the first process leading")
	wg.Go(func() { Led(ctxB, b, "key rotation", time.Millisecond, testLog(t), job(b)) })
	for deadline := time.Now().Add(eventually); b.asked.Load() < 3; {
		if time.Now().After(deadline) {
			t.Fatal("the second process did not ask for the lead")
		}
		time.Sleep(time.Millisecond)
	}
	select {
	case <-started[b]:
		t.Fatal("the second process ran the job while the first led it")
	default:
	}

	terminate(t, admin, leaderSession)
	await(t, stopped[a], "the job stopping in the process that lost its connection")
	await(t, started[b], "the job starting in the other process")
	select {
	case <-started[a]:
		t.Fatal("the first process ran the job again")
	default:
	}

	// b's process ends: Led releases the lead as it returns.
	cancelB()
	await(t, stopped[b], "the job stopping when its process ends")
	for deadline := time.Now().Add(eventually); ; {
		l, err := a.DB.TryLead(t.Context(), "key rotation")
		if err == nil {
			l.Release()
			break
		}
		if !errors.Is(err, storage.ErrLeadTaken) || time.Now().After(deadline) {
			t.Fatalf("the lead after the leading process ended: %v", err)
		}
		time.Sleep(time.Millisecond)
	}
}

// A process of its own (no shared store) runs the job once, with its
// context, and Led returns when the job does.
func TestLedWithoutSharedStoreRunsTheJobOnce(t *testing.T) {
	type key struct{}
	ctx := context.WithValue(t.Context(), key{}, "mine")
	n := 0
	Led(ctx, nil, "sweep", time.Millisecond, nil, func(jobCtx context.Context) {
		n++
		if jobCtx.Value(key{}) != "mine" {
			t.Error("the job did not get Led's context")
		}
	})
	if n != 1 {
		t.Fatalf("the job ran %d times, want 1", n)
	}
}

// reloads counts the reloads of each topic and reports each.
type reloads struct {
	mu    sync.Mutex
	count map[string]int
	done  chan string
	gate  func(topic string, n int) // called in the reload, may block
}

func newReloads() *reloads {
	return &reloads{count: map[string]int{}, done: make(chan string, 1000)}
}

func (r *reloads) funcs(topics ...string) map[string]func(context.Context) error {
	m := map[string]func(context.Context) error{}
	for _, topic := range topics {
		m[topic] = func(context.Context) error {
			r.mu.Lock()
			r.count[topic]++
			n := r.count[topic]
			gate := r.gate
			r.mu.Unlock()
			if gate != nil {
				gate(topic, n)
			}
			r.done <- topic
			return nil
		}
	}
	return m
}

func (r *reloads) of(topic string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.count[topic]
}

// next waits for the next reload and returns its topic.
func (r *reloads) next(t *testing.T, what string) string {
	t.Helper()
	return await(t, r.done, what)
}

// startWatch runs Watch in p until the test ends.
func startWatch(t *testing.T, p *process, r *reloads, fallback time.Duration, topics ...string) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Watch(ctx, p, r.funcs(topics...), fallback, testLog(t))
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

// awaitStart waits for the reload of every topic that Watch does when
// its watch is in place.
func (r *reloads) awaitStart(t *testing.T, what string, topics ...string) {
	t.Helper()
	seen := map[string]bool{}
	for len(seen) < len(topics) {
		seen[r.next(t, what)] = true
	}
}

func TestWatchReloadsWhatAnotherProcessChanged(t *testing.T) {
	ps, _ := openProcesses(t, 2)
	a, b := ps[0], ps[1]
	ctx := t.Context()
	r := newReloads()
	startWatch(t, a, r, time.Hour, storage.ChangeSettings, storage.ChangeWebhooks)
	r.awaitStart(t, "the reloads at start", storage.ChangeSettings, storage.ChangeWebhooks)

	if err := b.PutSetting(ctx, "theme", []byte("dark")); err != nil {
		t.Fatal(err)
	}
	if got := r.next(t, "a reload after PutSetting"); got != storage.ChangeSettings {
		t.Fatalf("reloaded %q after PutSetting, want %q", got, storage.ChangeSettings)
	}
	if err := b.CreateWebhook(ctx, storage.Webhook{ID: "w1", URL: "https://example.com/", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if got := r.next(t, "a reload after CreateWebhook"); got != storage.ChangeWebhooks {
		t.Fatalf("reloaded %q after CreateWebhook, want %q", got, storage.ChangeWebhooks)
	}
	// A topic Watch was not given (directories) reloads nothing; the
	// settings write after it is the next reload.
	if err := b.PutDirectory(ctx, storage.Directory{ID: "d1", Type: "ldap", CreatedAt: time.Now(), UpdatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := b.PutSetting(ctx, "theme", []byte("light")); err != nil {
		t.Fatal(err)
	}
	if got := r.next(t, "a reload after PutDirectory and PutSetting"); got != storage.ChangeSettings {
		t.Fatalf("reloaded %q, want %q", got, storage.ChangeSettings)
	}
	if s, w := r.of(storage.ChangeSettings), r.of(storage.ChangeWebhooks); s != 3 || w != 2 {
		t.Fatalf("reloads: settings %d, webhooks %d; want 3 and 2", s, w)
	}
}

// Notices that arrive while a topic reloads make one more reload of it,
// not one each.
func TestWatchCoalescesABurst(t *testing.T) {
	ps, _ := openProcesses(t, 2)
	a, b := ps[0], ps[1]
	ctx := t.Context()
	r := newReloads()
	entered, release := make(chan struct{}), make(chan struct{})
	r.gate = func(topic string, n int) {
		if topic == storage.ChangeSettings && n == 2 {
			close(entered)
			<-release
		}
	}
	startWatch(t, a, r, time.Hour, storage.ChangeSettings, storage.ChangeWebhooks)
	r.awaitStart(t, "the reloads at start", storage.ChangeSettings, storage.ChangeWebhooks)

	put := func(i int) {
		t.Helper()
		if err := b.PutSetting(ctx, "theme", fmt.Appendf(nil, "v%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	put(0)
	await(t, entered, "the reload after the first write")
	const burst = 20
	for i := range burst {
		put(i + 1)
	}
	// Watch has taken in the first notice and the whole burst.
	for range burst + 1 {
		await(t, a.noticed, "the burst's notices reaching Watch")
	}
	close(release)
	r.next(t, "the blocked reload") // returns
	if got := r.next(t, "the reload for the burst"); got != storage.ChangeSettings {
		t.Fatalf("reloaded %q after the burst, want %q", got, storage.ChangeSettings)
	}
	// A webhook write is the next reload: the burst made one reload, not more.
	if err := b.CreateWebhook(ctx, storage.Webhook{ID: "w1", URL: "https://example.com/", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if got := r.next(t, "a reload after CreateWebhook"); got != storage.ChangeWebhooks {
		t.Fatalf("reloaded %q after CreateWebhook, want %q (a burst of %d settings writes reloaded more than once more)", got, storage.ChangeWebhooks, burst)
	}
	if n := r.of(storage.ChangeSettings); n != 3 {
		t.Fatalf("settings reloaded %d times, want 3: at start, after the first write, once for the burst", n)
	}
}

// Without notices (none lost here, but they could be) every topic
// reloads on the fallback tick.
func TestWatchReloadsEverythingOnTheFallbackTick(t *testing.T) {
	ps, _ := openProcesses(t, 1)
	r := newReloads()
	startWatch(t, ps[0], r, 20*time.Millisecond, storage.ChangeSettings, storage.ChangeSigningKeys)
	for r.of(storage.ChangeSettings) < 3 || r.of(storage.ChangeSigningKeys) < 3 {
		r.next(t, "reloads on the fallback tick")
	}
	select {
	case topic := <-ps[0].noticed:
		t.Fatalf("a notice (%q) arrived, though nobody wrote", topic)
	default:
	}
}

// When the watch's connection fails, Watch watches again and reloads
// everything, since notices may have been missed meanwhile.
func TestWatchReloadsEverythingWhenTheWatchRestarts(t *testing.T) {
	ps, admin := openProcesses(t, 2)
	a, b := ps[0], ps[1]
	r := newReloads()
	startWatch(t, a, r, time.Hour, storage.ChangeSettings, storage.ChangeDirectories)
	r.awaitStart(t, "the reloads at start", storage.ChangeSettings, storage.ChangeDirectories)

	terminate(t, admin, `SELECT pid FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid()
			AND (query LIKE 'LISTEN%' OR query = '-- ping')`)
	r.awaitStart(t, "the reloads after the watch restarted", storage.ChangeSettings, storage.ChangeDirectories)
	// And the new watch hears the other process.
	if err := b.PutDirectory(t.Context(), storage.Directory{ID: "d1", Type: "ldap", CreatedAt: time.Now(), UpdatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if got := r.next(t, "a reload after PutDirectory"); got != storage.ChangeDirectories {
		t.Fatalf("reloaded %q after PutDirectory, want %q", got, storage.ChangeDirectories)
	}
}

func TestWatchWithoutSharedStoreDoesNothing(t *testing.T) {
	r := newReloads()
	Watch(t.Context(), nil, r.funcs(storage.ChangeSettings), time.Millisecond, nil)
	if n := r.of(storage.ChangeSettings); n != 0 {
		t.Fatalf("Watch without a shared store reloaded %d times", n)
	}
}
